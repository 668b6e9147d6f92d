package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/audit"
	"github.com/proxykit/proxy/balance"
	"github.com/proxykit/proxy/breaker"
	"github.com/proxykit/proxy/bulkhead"
	"github.com/proxykit/proxy/cache"
	"github.com/proxykit/proxy/metrics"
	"github.com/proxykit/proxy/ratelimit"
	"github.com/proxykit/proxy/retry"
	"github.com/proxykit/proxy/stats"
	"github.com/proxykit/proxy/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// A serviceEntry is one configured service: its stack, its instances and
// handles on the layers whose state the health and stats pages show.
type serviceEntry struct {
	name      string
	cfg       *serviceConfig
	svc       proxy.Service // the whole stack, outermost layer first
	instances []*instanceEntry
	pool      *balance.Balancer[proxy.Service]
	breaker   *breaker.Breaker // nil without a breaker section
}

// An instanceEntry is one instance of a service.
type instanceEntry struct {
	name string
	url  string        // remote instances
	demo *demoInstance // demo instances
	svc  proxy.Service
}

// kind describes the instance for the health page.
func (in *instanceEntry) kind() string {
	if in.demo != nil {
		return "demo"
	}
	return "remote"
}

// closerFunc adapts a function to io.Closer.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// sharedLayers are the parts of the stack that every service shares: the
// observers behind Instrumented and the audit sink behind Audited.
type sharedLayers struct {
	tracer       *sdktrace.TracerProvider // nil when tracing is off
	metrics      *metrics.Metrics
	stats        *stats.Recorder
	auditSink    audit.Sink // nil when audit is off
	auditDropped atomic.Uint64
}

// newSharedLayers builds what every service's stack shares. The audit sink
// is closed last of all, in closeAll, so that it records every call.
func (g *gateway) newSharedLayers() (*sharedLayers, error) {
	sh := &sharedLayers{metrics: metrics.New(g.reg), stats: stats.New()}
	if tp := newTracerProvider(g.cfg.Tracing, g.log); tp != nil {
		sh.tracer = tp
		// Shut down (flushing the last spans) in closeAll, once every
		// call has ended.
		g.closers = append(g.closers, closerFunc(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return tp.Shutdown(ctx)
		}))
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

// buildInstances makes the instances of a service: demo instances share one
// backend, as replicas share a database; remote ones share the gateway's
// HTTP client.
func (g *gateway) buildInstances(sc *serviceConfig) []*instanceEntry {
	var backend demoBackend
	var out []*instanceEntry
	for _, ic := range sc.Instances {
		in := &instanceEntry{name: ic.Name}
		if ic.Demo != "" {
			if backend == nil {
				backend = demoFactories[ic.Demo]()
			}
			f := fault{Latency: ic.Latency, Jitter: ic.Jitter, ErrorRate: ic.ErrorRate, Down: ic.Down}
			in.demo = newDemoInstance(ic.Name, ic.Demo, backend, f, g.cfg.Seed)
			in.svc = in.demo
		} else {
			in.url = ic.URL
			r := &remoteInstance{name: ic.Name, url: ic.URL, client: g.client}
			in.svc = r
			if ic.HealthURL != "" {
				in.svc = &checkedRemote{remoteInstance: r, healthURL: ic.HealthURL}
			}
		}
		out = append(out, in)
	}
	return out
}

// newPool makes the balancer over a service's instances.
func newPool(sc *serviceConfig, instances []*instanceEntry) *balance.Balancer[proxy.Service] {
	members := make([]balance.Instance[proxy.Service], len(instances))
	for i, in := range instances {
		members[i] = balance.Instance[proxy.Service]{Name: in.name, Value: in.svc}
	}
	var picker balance.Picker
	switch sc.Balance.Policy {
	case "random":
		picker = balance.NewRandom()
	case "least_connections":
		picker = balance.NewLeastConnections()
	case "p2c":
		picker = balance.NewP2C()
	default:
		picker = balance.NewRoundRobin()
	}
	opts := []balance.Option{
		balance.WithFailureThreshold(sc.Balance.EjectAfter),
		balance.WithEjectionTime(sc.Balance.EjectTime),
		balance.WithMaxEjectionTime(max(sc.Balance.EjectTime, 5*time.Minute)),
		balance.WithMaxEjectionPercent(sc.Balance.MaxEjectedPercent),
	}
	if h := sc.HealthCheck; h != nil {
		opts = append(opts,
			balance.WithCheckInterval(h.Interval),
			balance.WithCheckTimeout(h.Timeout),
			balance.WithUnhealthyThreshold(h.UnhealthyAfter),
			balance.WithHealthyThreshold(h.HealthyAfter),
		)
	}
	return balance.New(members, picker, opts...)
}

// buildService builds one service's stack from its configuration. This is
// the one place where the stack is assembled. Outermost first:
//
//	Traced        a span per call, when tracing is on
//	Instrumented  counts and times every call (Prometheus and /api/v1/stats)
//	Audited       records one audit event per call, refused ones included
//	Validated     refuses malformed envelopes (400) before they cost anything
//	Limited       a token bucket per user, principal or service (429)
//	Bulkhead      bounds the calls in flight, shedding the excess (503)
//	Cached        answers repeated reads from memory, one call per miss
//	Retrying      retries transient failures within a budget
//	Breaker       fails fast (503) while the service as a whole is failing
//	Timeout       bounds each attempt (504)
//	Balanced      picks a healthy instance, ejects failing ones
//
// A layer whose section is absent from the configuration is left out.
func (g *gateway) buildService(name string, sc *serviceConfig, sh *sharedLayers) (*serviceEntry, error) {
	s := &serviceEntry{name: name, cfg: sc, instances: g.buildInstances(sc)}
	s.pool = newPool(sc, s.instances)
	for _, in := range s.instances {
		sh.metrics.SetInstanceHealthy(name, in.name, true)
	}
	cancelPool := s.pool.Subscribe(func(ev balance.Event) { g.onInstanceEvent(sh, name, ev) })
	pool := s.pool
	g.closers = append(g.closers, closerFunc(func() error {
		cancelPool()
		return pool.Close()
	}))

	var mw []proxy.Middleware
	if sh.tracer != nil {
		mw = append(mw, tracing.Traced(tracing.WithTracerProvider(sh.tracer)))
	}
	mw = append(mw, proxy.Instrumented(proxy.MultiObserver(sh.metrics, sh.stats)))
	if sh.auditSink != nil {
		ac := g.cfg.Audit
		opts := []proxy.AuditOption{proxy.WithAuditTimeout(ac.Timeout)}
		if len(ac.Fields) > 0 {
			opts = append(opts, proxy.WithAuditFields(ac.Fields...))
		}
		if len(ac.Redact) > 0 {
			opts = append(opts, proxy.WithAuditRedact(ac.Redact...))
		}
		if !ac.FailClosed {
			opts = append(opts, proxy.WithAuditFailOpen(&sh.auditDropped))
		}
		mw = append(mw, proxy.Audited(sh.auditSink, opts...))
	}
	mw = append(mw, proxy.Validated(
		proxy.WithMaxDataSize(int(g.cfg.Server.MaxBodyBytes)),
		proxy.WithMaxDepth(g.cfg.Server.MaxJSONDepth),
	))
	if rl := sc.RateLimit; rl != nil {
		lim := ratelimit.New(rate.Limit(rl.Rate), rl.Burst,
			ratelimit.WithMaxKeys(rl.MaxKeys), ratelimit.WithMaxWait(rl.MaxWait))
		mw = append(mw, proxy.Limited(lim, limitKeyFuncs[rl.Key]))
	}
	if bh := sc.Bulkhead; bh != nil {
		mw = append(mw, proxy.Bulkhead(bulkhead.New(bh.Limit, bulkhead.WithMaxWait(bh.MaxWait)), proxy.KeyByService))
	}
	if cc := sc.Cache; cc != nil && cc.Enabled {
		store := cache.New[string, *proxy.Response](cc.Size, cc.TTL,
			cache.WithStaleWhileRevalidate(cc.StaleWhileRevalidate), cache.WithStaleIfError(cc.StaleIfError))
		g.closers = append(g.closers, store)
		mw = append(mw, cachedActions(cc.Actions, proxy.Cached(store, proxy.KeyByRequest)))
	}
	if r := sc.Retry; r != nil {
		mw = append(mw, proxy.Retrying(retry.New(
			retry.WithMaxAttempts(r.Attempts),
			retry.WithBackoff(r.InitialBackoff, r.MaxBackoff, 2),
			retry.WithBudget(r.Budget, r.BudgetReserve),
			retry.WithOnRetry(func(ctx context.Context, attempt int, err error, delay time.Duration) {
				sh.metrics.RecordRetry(name)
				tracing.RecordRetry(ctx, attempt, err, delay)
			}),
		)))
	}
	if bc := sc.Breaker; bc != nil {
		opts := []breaker.Option{
			breaker.WithName(name),
			breaker.WithConsecutiveFailures(bc.ConsecutiveFailures),
			breaker.WithInterval(bc.Window),
			breaker.WithCooldown(bc.OpenTimeout),
			breaker.WithHalfOpenProbes(bc.HalfOpenProbes),
		}
		if bc.FailureRatio > 0 {
			opts = append(opts, breaker.WithFailureRatio(bc.FailureRatio, bc.MinRequests))
		}
		s.breaker = breaker.New(opts...)
		sh.metrics.SetBreakerState(name, metrics.BreakerClosed)
		cancelBreaker := s.breaker.Subscribe(func(ev breaker.Event) { g.onBreakerEvent(sh, name, ev) })
		g.closers = append(g.closers, closerFunc(func() error { cancelBreaker(); return nil }))
		mw = append(mw, proxy.Breaker(s.breaker))
	}
	mw = append(mw, proxy.Timeout(sc.Timeout))
	s.svc = proxy.Chain(proxy.Balanced(s.pool), mw...)
	return s, nil
}

// limitKeyFuncs maps rate_limit.key to the key a bucket belongs to.
var limitKeyFuncs = map[string]proxy.KeyFunc{
	"user":      proxy.KeyByUser,
	"service":   proxy.KeyByService,
	"principal": func(r *proxy.Request) string { return r.Meta(proxy.MetaPrincipal) },
}

// cachedActions applies the cache layer only to requests whose data.action
// is one of actions (all requests when actions is empty), so that a
// service's reads are cached while its writes always reach it.
func cachedActions(actions []string, cached proxy.Middleware) proxy.Middleware {
	if len(actions) == 0 {
		return cached
	}
	return func(next proxy.Service) proxy.Service {
		withCache := cached(next)
		return proxy.ServiceFunc(func(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
			var d struct {
				Action string `json:"action"`
			}
			if json.Unmarshal(req.Data, &d) == nil && slices.Contains(actions, d.Action) {
				return withCache.Process(ctx, req)
			}
			return next.Process(ctx, req)
		})
	}
}

// onBreakerEvent logs a breaker's change of state, reports it to the
// metrics and puts it on the event stream.
func (g *gateway) onBreakerEvent(sh *sharedLayers, service string, ev breaker.Event) {
	g.log.Info("breaker "+ev.To.String(), "service", service, "from", ev.From.String(), "to", ev.To.String())
	state := metrics.BreakerClosed
	switch ev.To {
	case breaker.Open:
		state = metrics.BreakerOpen
	case breaker.HalfOpen:
		state = metrics.BreakerHalfOpen
	}
	sh.metrics.SetBreakerState(service, state)
	g.hub.publish(event{Type: "breaker", Time: ev.At.UTC(), Data: map[string]string{
		"service": service, "from": ev.From.String(), "to": ev.To.String(),
	}})
}

// onInstanceEvent logs a change in an instance's state and puts it on the
// event stream.
func (g *gateway) onInstanceEvent(sh *sharedLayers, service string, ev balance.Event) {
	sh.metrics.SetInstanceHealthy(service, ev.Instance, ev.Kind == balance.Up || ev.Kind == balance.Returned)
	attrs := []any{"service", service, "instance", ev.Instance, "change", ev.Kind.String()}
	if ev.Err != nil {
		attrs = append(attrs, "err", ev.Err)
	}
	g.log.Info("instance "+ev.Kind.String(), attrs...)
	data := map[string]any{"service": service, "instance": ev.Instance, "change": ev.Kind.String(),
		"healthy": ev.Kind == balance.Up || ev.Kind == balance.Returned}
	if !ev.Until.IsZero() {
		data["until"] = ev.Until.UTC()
	}
	if ev.Err != nil {
		data["error"] = ev.Err.Error()
	}
	g.hub.publish(event{Type: "health", Time: time.Now().UTC(), Data: data})
}

// startBackground starts the gateway's background work: the active health
// checks and the stats snapshot on the event stream. The returned channel is closed when all of it has
// stopped after ctx ends.
func (g *gateway) startBackground(ctx context.Context) <-chan struct{} {
	for _, name := range g.names {
		if s := g.services[name]; s.cfg.HealthCheck != nil {
			s.pool.Start() // stopped by the pool's Close, in closeAll
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(g.cfg.Server.WebSocket.StatsInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if g.hub.active() {
					g.hub.publish(event{Type: "stats", Time: time.Now().UTC(), Data: g.statsSnapshot()})
				}
			}
		}
	}()
	return done
}

// breakerState names the state of s's breaker ("closed", "half-open" or
// "open"), or "" when it has none. Reading it moves an open breaker whose
// cool-down is over to half-open, and announces that.
func (s *serviceEntry) breakerState() string {
	if s.breaker == nil {
		return ""
	}
	return s.breaker.State().String()
}

// instanceStatuses reports each instance's health as the balancer sees it.
func (s *serviceEntry) instanceStatuses() []instanceStatus {
	states := s.pool.Snapshot()
	out := make([]instanceStatus, 0, len(states))
	for i, st := range states {
		in := s.instances[i]
		is := instanceStatus{
			Name: in.name, Kind: in.kind(), URL: in.url, Healthy: st.Eligible,
			InFlight: st.InFlight, Calls: st.Calls, Successes: st.Successes, Failures: st.Failures,
			ConsecutiveFailures: st.ConsecutiveFailures, Ejections: st.Ejections,
		}
		switch {
		case !st.Healthy:
			is.State = "down"
		case !st.EjectedUntil.IsZero():
			is.State = "ejected"
			until := st.EjectedUntil.UTC()
			is.EjectedUntil = &until
		default:
			is.State = "healthy"
		}
		if st.CheckErr != nil {
			is.CheckError = st.CheckErr.Error()
		}
		if in.demo != nil {
			is.Fault = in.demo.currentFault().json()
		}
		out = append(out, is)
	}
	return out
}
