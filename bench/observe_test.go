package bench_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/audit"
	"github.com/proxykit/proxy/metrics"
	"github.com/proxykit/proxy/stats"
)

// BenchmarkInstrumented measures Instrumented reporting every call to the
// Prometheus observer (on a registry of its own) and to the in-memory
// statistics. Neither peer has an equivalent layer.
func BenchmarkInstrumented(b *testing.B) {
	b.Run("obs=prometheus", func(b *testing.B) {
		run(b, "ours", viaService(proxy.Chain(backend, proxy.Instrumented(metrics.New(prometheus.NewRegistry())))))
	})
	b.Run("obs=stats", func(b *testing.B) {
		run(b, "ours", viaService(proxy.Chain(backend, proxy.Instrumented(stats.New()))))
	})
}

// discardSink is an audit.Sink that records nothing.
type discardSink struct{}

func (discardSink) Write(context.Context, audit.Event) error { return nil }
func (discardSink) Close() error                             { return nil }

// BenchmarkAudited measures Audited building and writing one event per call
// to a sink that discards it.
func BenchmarkAudited(b *testing.B) {
	run(b, "ours", viaService(proxy.Chain(backend, proxy.Audited(discardSink{}))))
}
