package proxy

import (
	"context"
	"time"
)

// An Observer is told about every call that passes through [Instrumented]:
// when it begins and how it ended. The Prometheus adapter
// (github.com/proxykit/proxy/metrics) and the in-memory statistics
// (github.com/proxykit/proxy/stats) implement it; so can any type that wants
// to count calls.
//
// Observers are called on the request's goroutine, on the hot path of every
// call, so they must be fast, must not block, and must be safe for concurrent
// use. Every Begin is followed by exactly one End for the same service, even
// when the wrapped service panics.
type Observer interface {
	// Begin is called when a call for service enters Instrumented, before
	// the wrapped service is called.
	Begin(service string)
	// End is called when that call has returned (or panicked).
	End(o Observation)
}

// An Observation describes one finished call. It is passed by value, so that
// observing a call allocates nothing.
type Observation struct {
	// Service is the request's Service, as Begin saw it.
	Service string
	// Outcome classifies the call's error with [OutcomeOf]. A call whose
	// service panicked is [OutcomeError].
	Outcome Outcome
	// Start is when the call entered Instrumented, read from its clock.
	Start time.Time
	// Duration is how long the call took, measured on the same clock.
	Duration time.Duration
	// Cached reports whether the call returned a response with
	// [Response.Cached] set: a cache hit. It is false for failed calls.
	Cached bool
}

// An InstrumentedOption configures [Instrumented].
type InstrumentedOption func(*instrumentedConfig)

type instrumentedConfig struct {
	clock Clock
}

// WithInstrumentedClock sets the clock Instrumented reads to time calls. The
// default is the system clock. It panics if c is nil.
func WithInstrumentedClock(c Clock) InstrumentedOption {
	if c == nil {
		panic("proxy: WithInstrumentedClock(nil)")
	}
	return func(cfg *instrumentedConfig) { cfg.clock = c }
}

// Instrumented returns a middleware that reports every call to obs: Begin
// with the request's service before the call, End with its [Outcome],
// duration and whether it was a cache hit after it. Use [MultiObserver] to
// report to several observers at once. Instrumented neither changes the
// request nor the response, and returns exactly what the wrapped service
// returned. A panic in the wrapped service is reported as [OutcomeError] and
// then re-raised.
//
// Instrumented reads its clock twice per call (with the system clock, the
// second read is of the monotonic clock only, as [time.Since] does) and
// allocates nothing; the cost of a call is that of its observers.
//
// # Where it belongs
//
// Outermost, so that it sees every call, including the ones that Validated,
// Limited or Breaker reject, and times the whole stack as the caller sees it:
//
//	svc := proxy.Chain(payments,
//		proxy.Instrumented(proxy.MultiObserver(prom, live)),
//		proxy.Validated(),
//		proxy.Limited(lim, proxy.KeyByUser),
//	)
//
// Instrumented panics if obs is nil.
func Instrumented(obs Observer, opts ...InstrumentedOption) Middleware {
	if obs == nil {
		panic("proxy: Instrumented with a nil Observer")
	}
	cfg := instrumentedConfig{clock: systemClock{}}
	for _, opt := range opts {
		opt(&cfg)
	}
	return func(next Service) Service {
		if next == nil {
			panic("proxy: Instrumented around a nil Service")
		}
		return &instrumented{next: next, obs: obs, clock: cfg.clock}
	}
}

type instrumented struct {
	next  Service
	obs   Observer
	clock Clock
}

func (s *instrumented) Process(ctx context.Context, req *Request) (resp *Response, err error) {
	service := req.Service
	start := s.clock.Now()
	s.obs.Begin(service)
	returned := false
	// The deferred call reports the end even when next panics; it does not
	// recover, so the panic carries on up the stack.
	defer func() {
		o := Observation{Service: service, Outcome: OutcomeError, Start: start}
		if returned {
			o.Outcome = OutcomeOf(err)
			o.Cached = err == nil && resp != nil && resp.Cached
		}
		o.Duration = since(s.clock, start)
		s.obs.End(o)
	}()
	resp, err = s.next.Process(ctx, req)
	returned = true
	return resp, err
}

// MultiObserver returns an Observer that reports every event to each of obs
// in turn, as [io.MultiWriter] writes to several writers. It panics if obs is
// empty or holds a nil Observer.
func MultiObserver(obs ...Observer) Observer {
	if len(obs) == 0 {
		panic("proxy: MultiObserver of no Observer")
	}
	for _, o := range obs {
		if o == nil {
			panic("proxy: MultiObserver with a nil Observer")
		}
	}
	if len(obs) == 1 {
		return obs[0]
	}
	return multiObserver(append([]Observer(nil), obs...))
}

type multiObserver []Observer

func (m multiObserver) Begin(service string) {
	for _, o := range m {
		o.Begin(service)
	}
}

func (m multiObserver) End(obs Observation) {
	for _, o := range m {
		o.End(obs)
	}
}

var (
	_ Service  = (*instrumented)(nil)
	_ Observer = multiObserver(nil)
	_ Clock    = systemClock{}
)
