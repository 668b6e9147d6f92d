package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/internal/clocktest"
)

var instrumentedT0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// instrumentedEvent is one call to an Observer, as instrumentedLog saw it.
type instrumentedEvent struct {
	begin bool
	obs   proxy.Observation // for End; Service alone for Begin
}

// instrumentedLog is an Observer that records its calls.
type instrumentedLog struct {
	mu     sync.Mutex
	events []instrumentedEvent
}

func (l *instrumentedLog) Begin(service string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, instrumentedEvent{begin: true, obs: proxy.Observation{Service: service}})
}

func (l *instrumentedLog) End(o proxy.Observation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, instrumentedEvent{obs: o})
}

func (l *instrumentedLog) Events() []instrumentedEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]instrumentedEvent(nil), l.events...)
}

// instrumentedCounter is an Observer that counts its calls.
type instrumentedCounter struct {
	begins, ends, inflight, maxInflight atomic.Int64
}

func (c *instrumentedCounter) Begin(string) {
	c.begins.Add(1)
	n := c.inflight.Add(1)
	for {
		m := c.maxInflight.Load()
		if n <= m || c.maxInflight.CompareAndSwap(m, n) {
			return
		}
	}
}

func (c *instrumentedCounter) End(proxy.Observation) {
	c.ends.Add(1)
	c.inflight.Add(-1)
}

// instrumentedNop is an Observer that does nothing, to measure Instrumented
// alone.
type instrumentedNop struct{}

func (instrumentedNop) Begin(string)          {}
func (instrumentedNop) End(proxy.Observation) {}

// instrumentedBackend returns a service that takes took on clk and then
// answers with resp and err.
func instrumentedBackend(clk *clocktest.Clock, took time.Duration, resp *proxy.Response, err error) proxy.Service {
	return proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		clk.Advance(took)
		return resp, err
	})
}

func TestInstrumentedObservesEachCall(t *testing.T) {
	errDeclined := errors.New("card declined")
	fresh := &proxy.Response{RequestID: "req_1", Service: "payment"}
	hit := &proxy.Response{RequestID: "req_1", Service: "payment", Cached: true}
	tests := []struct {
		name       string
		resp       *proxy.Response
		err        error
		wantOut    proxy.Outcome
		wantCached bool
	}{
		{"ok", fresh, nil, proxy.OutcomeOK, false},
		{"cache hit", hit, nil, proxy.OutcomeOK, true},
		{"nil response", nil, nil, proxy.OutcomeOK, false},
		{"service error", nil, errDeclined, proxy.OutcomeError, false},
		{"error with a cached response", hit, errDeclined, proxy.OutcomeError, false},
		{"rate limited", nil, &proxy.RateLimitError{Key: "alice", RetryAfter: time.Second}, proxy.OutcomeRateLimited, false},
		{"circuit open", nil, fmt.Errorf("%w: gobreaker: open", proxy.ErrCircuitOpen), proxy.OutcomeCircuitOpen, false},
		{"invalid", nil, &proxy.InvalidRequestError{Field: "id", Reason: "missing"}, proxy.OutcomeInvalid, false},
		{"timeout", nil, fmt.Errorf("call: %w", context.DeadlineExceeded), proxy.OutcomeTimeout, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktest.New(instrumentedT0)
			var log instrumentedLog
			svc := proxy.Chain(instrumentedBackend(clk, 30*time.Millisecond, tt.resp, tt.err),
				proxy.Instrumented(&log, proxy.WithInstrumentedClock(clk)))
			req := &proxy.Request{ID: "req_1", UserID: "alice", Service: "payment"}

			resp, err := svc.Process(t.Context(), req)

			if resp != tt.resp || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Errorf("Process() = %v, %v, want %v, %v", resp, err, tt.resp, tt.err)
			}
			want := []instrumentedEvent{
				{begin: true, obs: proxy.Observation{Service: "payment"}},
				{obs: proxy.Observation{
					Service:  "payment",
					Outcome:  tt.wantOut,
					Start:    instrumentedT0,
					Duration: 30 * time.Millisecond,
					Cached:   tt.wantCached,
				}},
			}
			if got := log.Events(); !reflect.DeepEqual(got, want) {
				t.Errorf("observed %+v, want %+v", got, want)
			}
		})
	}
}

func TestInstrumentedLeavesRequestAlone(t *testing.T) {
	req := &proxy.Request{ID: "req_1", UserID: "alice", Service: "payment", Metadata: map[string]string{proxy.MetaTraceID: "t1"}}
	before := req.Clone()
	var got *proxy.Request
	backend := proxy.ServiceFunc(func(_ context.Context, r *proxy.Request) (*proxy.Response, error) {
		got = r
		return &proxy.Response{RequestID: r.ID}, nil
	})
	svc := proxy.Chain(backend, proxy.Instrumented(instrumentedNop{}))
	if _, err := svc.Process(t.Context(), req); err != nil {
		t.Fatalf("Process() error = %v", err)
	}
	if got != req {
		t.Errorf("backend got request %p, want the caller's %p", got, req)
	}
	if !reflect.DeepEqual(req, before) {
		t.Errorf("request after Process = %+v, want %+v", req, before)
	}
}

func TestInstrumentedReportsAndReraisesPanic(t *testing.T) {
	clk := clocktest.New(instrumentedT0)
	var log instrumentedLog
	backend := proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		clk.Advance(time.Second)
		panic("backend bug")
	})
	svc := proxy.Chain(backend, proxy.Instrumented(&log, proxy.WithInstrumentedClock(clk)))

	recovered := func() (v any) {
		defer func() { v = recover() }()
		_, _ = svc.Process(t.Context(), &proxy.Request{ID: "req_1", UserID: "alice", Service: "payment"})
		return nil
	}()

	if recovered != "backend bug" {
		t.Errorf("recovered %v, want the backend's panic %q", recovered, "backend bug")
	}
	events := log.Events()
	if len(events) != 2 || !events[0].begin {
		t.Fatalf("observed %+v, want a Begin and an End", events)
	}
	want := proxy.Observation{Service: "payment", Outcome: proxy.OutcomeError, Start: instrumentedT0, Duration: time.Second}
	if events[1].obs != want {
		t.Errorf("End(%+v), want End(%+v)", events[1].obs, want)
	}
}

func TestMultiObserver(t *testing.T) {
	clk := clocktest.New(instrumentedT0)
	var first, second instrumentedLog
	var third instrumentedCounter
	svc := proxy.Chain(instrumentedBackend(clk, time.Millisecond, nil, proxy.ErrNoHealthyInstance),
		proxy.Instrumented(proxy.MultiObserver(&first, &second, &third), proxy.WithInstrumentedClock(clk)))

	for range 3 {
		_, _ = svc.Process(t.Context(), &proxy.Request{ID: "r", UserID: "u", Service: "user"})
	}

	got1, got2 := first.Events(), second.Events()
	if len(got1) != 6 {
		t.Errorf("first observer saw %d events, want 6", len(got1))
	}
	if !reflect.DeepEqual(got1, got2) {
		t.Errorf("second observer saw %+v, want the same as the first: %+v", got2, got1)
	}
	if b, e := third.begins.Load(), third.ends.Load(); b != 3 || e != 3 {
		t.Errorf("third observer saw %d begins and %d ends, want 3 and 3", b, e)
	}
	for _, ev := range got1 {
		if !ev.begin && ev.obs.Outcome != proxy.OutcomeNoHealthyInstance {
			t.Errorf("End outcome = %v, want %v", ev.obs.Outcome, proxy.OutcomeNoHealthyInstance)
		}
	}
}

func TestMultiObserverOfOneIsThatObserver(t *testing.T) {
	var log instrumentedLog
	if got := proxy.MultiObserver(&log); got != proxy.Observer(&log) {
		t.Errorf("MultiObserver(o) = %v, want o itself", got)
	}
}

func TestInstrumentedConcurrentCallsBalance(t *testing.T) {
	var c instrumentedCounter
	svc := proxy.Chain(proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		return &proxy.Response{}, nil
	}), proxy.Instrumented(&c))
	const goroutines, calls = 8, 200
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range calls {
				_, _ = svc.Process(t.Context(), &proxy.Request{ID: "r", UserID: "u", Service: "order"})
			}
		})
	}
	wg.Wait()
	if b, e := c.begins.Load(), c.ends.Load(); b != goroutines*calls || e != goroutines*calls {
		t.Errorf("Begin called %d times and End %d, want %d each", b, e, goroutines*calls)
	}
	if n := c.inflight.Load(); n != 0 {
		t.Errorf("in flight after all calls = %d, want 0", n)
	}
	if m := c.maxInflight.Load(); m < 1 || m > goroutines {
		t.Errorf("most in flight = %d, want between 1 and %d", m, goroutines)
	}
}

func TestInstrumentedPanicsOnBadConfig(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"nil observer", func() { proxy.Instrumented(nil) }},
		{"nil clock", func() { proxy.WithInstrumentedClock(nil) }},
		{"nil service", func() { proxy.Instrumented(instrumentedNop{})(nil) }},
		{"no observer", func() { proxy.MultiObserver() }},
		{"nil in MultiObserver", func() { proxy.MultiObserver(instrumentedNop{}, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("%s: no panic, want one", tt.name)
				}
			}()
			tt.f()
		})
	}
}

// instrumentedStatic answers every call with the same response, allocating
// nothing, so that benchmarks measure the wrapper alone.
var instrumentedStatic = proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
	return instrumentedResp, nil
})

var (
	instrumentedResp = &proxy.Response{RequestID: "req_1", Service: "payment"}
	instrumentedReq  = &proxy.Request{ID: "req_1", UserID: "alice", Service: "payment"}
)

func BenchmarkInstrumented(b *testing.B) {
	benchProcess(b, proxy.Chain(instrumentedStatic, proxy.Instrumented(instrumentedNop{})), instrumentedReq)
}
