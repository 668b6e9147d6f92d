package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/proxykit/proxy/audit"
	"github.com/proxykit/proxy/metrics"
	"github.com/proxykit/proxy/stats"
)

// sharedLayers are the parts of the stack that every service shares: the
// tracer provider behind Traced, the observers behind Instrumented, the
// audit sink behind Audited and the Redis client behind shared limits and
// caches.
type sharedLayers struct {
	tracer       *sdktrace.TracerProvider // nil when tracing is off
	redis        *redis.Client            // nil without a redis section
	metrics      *metrics.Metrics
	stats        *stats.Recorder
	auditSink    audit.Sink // nil when audit is off
	auditDropped atomic.Uint64
}

// newSharedLayers builds what every service's stack shares, across reloads
// too. The audit sink is closed last of all, in closeAll, so that it
// records every call.
func (g *gateway) newSharedLayers() (*sharedLayers, error) {
	sh := &sharedLayers{metrics: metrics.New(g.reg), stats: stats.New()}
	tp, err := newTracerProvider(g.cfg.Tracing, g.log, g.opts.stdout, g.opts.spanProcessors)
	if err != nil {
		return nil, err
	}
	if tp != nil {
		sh.tracer = tp
		// Shut down (flushing the last spans) in closeAll, once every
		// call has ended.
		g.closers = append(g.closers, closerFunc(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return tp.Shutdown(ctx)
		}))
	}
	if rc := g.cfg.Redis; rc != nil {
		client, err := newRedisClient(rc)
		if err != nil {
			return nil, err
		}
		sh.redis = client
		g.closers = append(g.closers, client)
		g.reg.MustRegister(newRedisCollector(g))
	}
	g.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "gateway_audit_dropped_total",
		Help: "Calls served whose audit record could not be written (audit.fail_closed: false).",
	}, func() float64 { return float64(sh.auditDropped.Load()) }))
	ac := g.cfg.Audit
	switch ac.Sink {
	case "log":
		sh.auditSink = audit.NewSlog(g.log.With("log", "audit"))
	case "file":
		sink, err := openAuditFile(ac, g.log)
		if err != nil {
			return nil, err
		}
		sh.auditSink = sink
	}
	g.audit = sh.auditSink
	return sh, nil
}

// openAuditFile opens the hash-chained audit log, continuing its chain. A
// partial last record, as a crash leaves it, is removed first and logged;
// any other damage is tampering, and the gateway refuses to start on it.
func openAuditFile(ac auditConfig, log *slog.Logger) (*audit.FileSink, error) {
	opts := []audit.FileOption{audit.WithFlushInterval(ac.FlushInterval)}
	sink, err := audit.OpenFile(ac.File, opts...)
	if errors.Is(err, audit.ErrTruncated) {
		cut, rerr := audit.Repair(ac.File)
		if rerr != nil {
			return nil, fmt.Errorf("audit log %s: %w", ac.File, rerr)
		}
		log.Warn("audit log ended in a partial record, as a crash leaves it; removed it", "file", ac.File, "bytes", len(cut))
		sink, err = audit.OpenFile(ac.File, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("audit log %s: %w", ac.File, err)
	}
	return sink, nil
}
