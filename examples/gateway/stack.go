package main

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/balance"
	"github.com/proxykit/proxy/breaker"
	"github.com/proxykit/proxy/bulkhead"
	"github.com/proxykit/proxy/metrics"
	"github.com/proxykit/proxy/retry"
	"github.com/proxykit/proxy/tracing"
)

// closerFunc adapts a function to io.Closer.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// buildService builds one service's stack from its configuration. This is
// the one place where the stack is assembled. Outermost first:
//
//	Traced        a span per call, when tracing is on
//	Instrumented  counts and times every call (Prometheus and /api/v1/stats)
//	Audited       records one audit event per call, refused ones included
//	Validated     refuses malformed envelopes (400) before they cost anything
//	Limited       a token bucket per user, principal or service (429), in
//	              memory or shared by the replicas through Redis
//	Bulkhead      bounds the calls in flight, shedding the excess (503)
//	Cached        answers repeated reads from memory (then Redis, when
//	              shared), one call per miss
//	Retrying      retries transient failures within a budget
//	Breaker       fails fast (503) while the service as a whole is failing
//	Timeout       bounds each attempt (504)
//	Balanced      picks a healthy instance, ejects failing ones
//
// A layer whose section is absent from the configuration is left out.
func (g *gateway) buildService(t *table, name string, sc *serviceConfig) *serviceEntry {
	sh := g.shared
	s := &serviceEntry{name: name, cfg: sc, instances: g.buildInstances(name, sc)}
	s.pool = newPool(sc, s.instances)
	for _, in := range s.instances {
		sh.metrics.SetInstanceHealthy(name, in.name, true)
	}
	cancelPool := s.pool.Subscribe(func(ev balance.Event) { g.onInstanceEvent(name, ev) })
	pool := s.pool
	t.closers = append(t.closers, closerFunc(func() error {
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
		var lim proxy.Limiter
		lim, s.redisLimiter = g.newLimiter(name, rl)
		mw = append(mw, proxy.Limited(lim, limitKeyFuncs[rl.Key]))
	}
	if bh := sc.Bulkhead; bh != nil {
		mw = append(mw, proxy.Bulkhead(bulkhead.New(bh.Limit, bulkhead.WithMaxWait(bh.MaxWait)), proxy.KeyByService))
	}
	if cc := sc.Cache; cc != nil && cc.Enabled {
		store, local, remote := g.newResponseStore(name, cc)
		s.redisCache = remote
		t.closers = append(t.closers, local)
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
		cancelBreaker := s.breaker.Subscribe(func(ev breaker.Event) { g.onBreakerEvent(name, ev) })
		t.closers = append(t.closers, closerFunc(func() error { cancelBreaker(); return nil }))
		mw = append(mw, proxy.Breaker(s.breaker))
	}
	mw = append(mw, proxy.Timeout(sc.Timeout))
	s.svc = proxy.Chain(proxy.Balanced(s.pool), mw...)
	return s
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
