package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/breaker"
	"github.com/sony/gobreaker/v2"
)

var errBreakerBackend = errors.New("backend down")

// breakerBackend is a Service whose answer a test switches, and which counts
// the calls that reach it.
type breakerBackend struct {
	calls atomic.Int64
	err   atomic.Pointer[error] // nil: answer with breakerResp
}

var breakerResp = &proxy.Response{RequestID: "req_1", Service: "echo"}

func (s *breakerBackend) fail(err error) { s.err.Store(&err) }
func (s *breakerBackend) heal()          { s.err.Store(nil) }

func (s *breakerBackend) Process(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
	s.calls.Add(1)
	if p := s.err.Load(); p != nil {
		return nil, *p
	}
	return breakerResp, nil
}

// breakerPanicValue returns what f panics with, or nil if it returns.
func breakerPanicValue(f func()) (r any) {
	defer func() { r = recover() }()
	f()
	return nil
}

func TestBreakerRejectsWithBothErrors(t *testing.T) {
	backend := &breakerBackend{}
	backend.fail(errBreakerBackend)
	br := breaker.New(breaker.WithName("payment"), breaker.WithConsecutiveFailures(2))
	svc := proxy.Chain(backend, proxy.Breaker(br))
	for i := range 2 {
		if _, err := svc.Process(ctx, aliceReq); err != errBreakerBackend {
			t.Fatalf("Process() #%d = %v, want the backend's own error %v", i+1, err, errBreakerBackend)
		}
	}
	resp, err := svc.Process(ctx, aliceReq)
	if resp != nil || !errors.Is(err, proxy.ErrCircuitOpen) || !errors.Is(err, breaker.ErrOpen) || !errors.Is(err, gobreaker.ErrOpenState) {
		t.Fatalf("Process() on an open breaker = %v, %v, want nil and an error matching %v and %v", resp, err, proxy.ErrCircuitOpen, breaker.ErrOpen)
	}
	if got := proxy.OutcomeOf(err); got != proxy.OutcomeCircuitOpen {
		t.Errorf("OutcomeOf(%v) = %v, want %v", err, got, proxy.OutcomeCircuitOpen)
	}
	if !strings.Contains(err.Error(), `"payment"`) {
		t.Errorf("Process() error = %q, want it to name the breaker %q", err, "payment")
	}
	if got := backend.calls.Load(); got != 2 {
		t.Errorf("backend calls = %d, want 2: an open breaker must not call it", got)
	}
}

func TestBreakerTooManyRequestsWhileProbing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		br := breaker.New(breaker.WithConsecutiveFailures(1), breaker.WithCooldown(time.Second))
		backend := &breakerBackend{}
		backend.fail(errBreakerBackend)
		release := make(chan struct{})
		probe := proxy.ServiceFunc(func(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
			if backend.err.Load() == nil {
				<-release // the probe holds the only place
			}
			return backend.Process(ctx, req)
		})
		svc := proxy.Chain(probe, proxy.Breaker(br))
		_, _ = svc.Process(ctx, aliceReq)
		backend.heal()
		time.Sleep(2 * time.Second)
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := svc.Process(ctx, aliceReq); err != nil {
				t.Errorf("Process(probe) = %v, want nil", err)
			}
		})
		synctest.Wait()
		_, err := svc.Process(ctx, aliceReq)
		if !errors.Is(err, proxy.ErrCircuitOpen) || !errors.Is(err, breaker.ErrTooManyRequests) {
			t.Errorf("Process() during the probe = %v, want an error matching %v and %v", err, proxy.ErrCircuitOpen, breaker.ErrTooManyRequests)
		}
		close(release)
		wg.Wait()
		if got := br.State(); got != breaker.Closed {
			t.Errorf("State() after a good probe = %v, want %v", got, breaker.Closed)
		}
	})
}

func TestBreakerPassesThrough(t *testing.T) {
	own := errors.New("insufficient funds")
	tests := []struct {
		name string
		err  error
	}{
		{"own error", own},
		{"invalid request", &proxy.InvalidRequestError{Field: "data.amount", Reason: "must be positive"}},
		{"rate limited", &proxy.RateLimitError{Key: "alice", RetryAfter: time.Second}},
		{"wrapped own error", fmt.Errorf("charge: %w", own)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			backend := &breakerBackend{}
			backend.fail(tt.err)
			svc := proxy.Chain(backend, proxy.Breaker(breaker.New()), proxy.Timeout(time.Minute))
			resp, err := svc.Process(ctx, aliceReq)
			if resp != nil || err != tt.err {
				t.Fatalf("Process() = %v, %#v, want nil, the backend's own %#v", resp, err, tt.err)
			}
			var invalid *proxy.InvalidRequestError
			var limited *proxy.RateLimitError
			if errors.As(tt.err, &invalid) && (!errors.As(err, &invalid) || invalid.Field != "data.amount") {
				t.Errorf("errors.As(%v, *InvalidRequestError) lost the field", err)
			}
			if errors.As(tt.err, &limited) && (!errors.As(err, &limited) || limited.RetryAfter != time.Second) {
				t.Errorf("errors.As(%v, *RateLimitError) lost RetryAfter", err)
			}
		})
	}
	t.Run("response", func(t *testing.T) {
		svc := proxy.Chain(&breakerBackend{}, proxy.Breaker(breaker.New()), proxy.Timeout(time.Minute))
		if resp, err := svc.Process(ctx, aliceReq); resp != breakerResp || err != nil {
			t.Errorf("Process() = %p, %v, want the backend's response %p, nil", resp, err, breakerResp)
		}
	})
}

// TestBreakerCountsOnlyServiceFailures checks which errors trip a breaker
// set to trip at the first failure, and whose own classifier excludes
// nothing: the middleware must exclude the caller's mistakes itself.
func TestBreakerCountsOnlyServiceFailures(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		trips bool
	}{
		{"canceled", context.Canceled, false},
		{"wrapped canceled", fmt.Errorf("call: %w", context.Canceled), false},
		{"invalid request", &proxy.InvalidRequestError{Field: "user_id", Reason: "missing"}, false},
		{"unauthenticated", proxy.ErrUnauthenticated, false},
		{"forbidden", fmt.Errorf("role guest: %w", proxy.ErrForbidden), false},
		{"rate limited by an inner limiter", &proxy.RateLimitError{Key: "alice"}, false},
		{"deadline exceeded", context.DeadlineExceeded, true},
		{"service failure", errBreakerBackend, true},
		{"no healthy instance", proxy.ErrNoHealthyInstance, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := breaker.New(breaker.WithConsecutiveFailures(1), breaker.WithExcluded(func(error) bool { return false }))
			backend := &breakerBackend{}
			backend.fail(tt.err)
			svc := proxy.Chain(backend, proxy.Breaker(br))
			for range 10 {
				if _, err := svc.Process(ctx, aliceReq); !errors.Is(err, tt.err) {
					break
				}
			}
			want := breaker.Closed
			if tt.trips {
				want = breaker.Open
			}
			if got := br.State(); got != want {
				t.Errorf("State() after errors %v = %v, want %v", tt.err, got, want)
			}
		})
	}
}

// TestBreakerCanceledCallsLeaveItClosed cancels 1000 calls while a healthy
// backend is working on them: the callers gave up, the backend did nothing
// wrong, and a breaker set to trip at the first failure stays closed.
func TestBreakerCanceledCallsLeaveItClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		br := breaker.New(breaker.WithConsecutiveFailures(1))
		var calls atomic.Int64
		healthy := proxy.ServiceFunc(func(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
			calls.Add(1)
			select { // a healthy service that honours ctx
			case <-time.After(time.Second):
				return breakerResp, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
		svc := proxy.Chain(healthy, proxy.Breaker(br), proxy.Timeout(time.Minute))
		callCtx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		for range 1000 {
			wg.Go(func() {
				if _, err := svc.Process(callCtx, aliceReq); !errors.Is(err, context.Canceled) {
					t.Errorf("Process(canceled mid-call) = %v, want %v", err, context.Canceled)
				}
			})
		}
		synctest.Wait() // all 1000 are in the backend
		cancel()
		wg.Wait()
		if got := br.State(); got != breaker.Closed {
			t.Fatalf("State() after 1000 canceled calls = %v, want %v", got, breaker.Closed)
		}
		if c := br.Counts(); c.TotalFailures != 0 || c.TotalExclusions != 1000 {
			t.Errorf("Counts() = %+v, want 0 failures and 1000 exclusions", c)
		}
		if got := calls.Load(); got != 1000 {
			t.Errorf("backend calls = %d, want 1000", got)
		}
		if _, err := svc.Process(ctx, aliceReq); err != nil {
			t.Errorf("Process() after the canceled calls = %v, want nil", err)
		}
	})
}

func TestBreakerCallerOutOfTimeDoesNotCount(t *testing.T) {
	br := breaker.New(breaker.WithConsecutiveFailures(1))
	backend := &breakerBackend{}
	svc := proxy.Chain(backend, proxy.Breaker(br))
	expired, cancelExpired := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancelExpired()
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	for range 10 {
		if _, err := svc.Process(expired, aliceReq); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Process(expired ctx) = %v, want %v", err, context.DeadlineExceeded)
		}
		if _, err := svc.Process(canceled, aliceReq); !errors.Is(err, context.Canceled) {
			t.Fatalf("Process(canceled ctx) = %v, want %v", err, context.Canceled)
		}
	}
	if got := backend.calls.Load(); got != 0 {
		t.Errorf("backend calls = %d, want 0", got)
	}
	if c := br.Counts(); br.State() != breaker.Closed || c.Requests != 0 {
		t.Errorf("State(), Counts() = %v, %+v, want closed and untouched", br.State(), c)
	}
}

func TestBreakerPanicIsCountedAndRaised(t *testing.T) {
	br := breaker.New(breaker.WithConsecutiveFailures(1))
	boom := errors.New("nil map in handler")
	crashing := proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		panic(boom)
	})
	svc := proxy.Chain(crashing, proxy.Breaker(br))
	if got := breakerPanicValue(func() { _, _ = svc.Process(ctx, aliceReq) }); got != boom {
		t.Fatalf("Process(panicking) raised %v, want %v", got, boom)
	}
	if got := br.State(); got != breaker.Open {
		t.Errorf("State() after a panic = %v, want %v: a panic is a failure", got, breaker.Open)
	}
}

func TestBreakerHealingBackendClosesIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const cooldown = 10 * time.Second
		br := breaker.New(
			breaker.WithName("payment"),
			breaker.WithConsecutiveFailures(3),
			breaker.WithCooldown(cooldown),
			breaker.WithHalfOpenProbes(2),
		)
		var (
			mu     sync.Mutex
			events []breaker.Event
		)
		br.Subscribe(func(ev breaker.Event) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, ev)
		})
		backend := &breakerBackend{}
		backend.fail(errBreakerBackend)
		svc := proxy.Chain(backend, proxy.Breaker(br), proxy.Timeout(time.Second))

		t0 := time.Now()
		for range 5 {
			_, _ = svc.Process(ctx, aliceReq)
		}
		backend.heal()
		time.Sleep(cooldown + time.Second)
		t1 := time.Now()
		for i := range 3 {
			if _, err := svc.Process(ctx, aliceReq); err != nil {
				t.Fatalf("Process() #%d after healing = %v, want nil", i+1, err)
			}
		}
		want := []breaker.Event{
			{Name: "payment", From: breaker.Closed, To: breaker.Open, At: t0},
			{Name: "payment", From: breaker.Open, To: breaker.HalfOpen, At: t1},
			{Name: "payment", From: breaker.HalfOpen, To: breaker.Closed, At: t1},
		}
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(events, want) {
			t.Errorf("events = %v, want %v", events, want)
		}
		if got := backend.calls.Load(); got != 3+3 {
			t.Errorf("backend calls = %d, want 6 (3 to trip, 3 after healing)", got)
		}
	})
}

// TestBreakerHangingBackendSeesBoundedProbes puts Breaker outside Timeout in
// front of a backend that never answers, for 200 concurrent callers and
// several open periods: the timeouts trip the breaker, and after that each
// half-open period lets at most the configured number of probes reach the
// backend. Periods are a cool-down apart and a probe lasts one timeout, so
// the backend's calls fall into clusters, one per period.
func TestBreakerHangingBackendSeesBoundedProbes(t *testing.T) {
	const (
		callers  = 200
		probes   = 2
		cooldown = 2 * time.Second
		timeout  = 100 * time.Millisecond
		periods  = 4
	)
	synctest.Test(t, func(t *testing.T) {
		br := breaker.New(
			breaker.WithConsecutiveFailures(3),
			breaker.WithCooldown(cooldown),
			breaker.WithHalfOpenProbes(probes),
		)
		var (
			trips, halfOpens atomic.Int64
			mu               sync.Mutex
			times            []time.Time // when each backend call began
			calls            atomic.Int64
		)
		br.Subscribe(func(ev breaker.Event) {
			switch ev.To {
			case breaker.Open:
				trips.Add(1)
			case breaker.HalfOpen:
				halfOpens.Add(1)
			}
		})
		hanging := proxy.ServiceFunc(func(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
			calls.Add(1)
			mu.Lock()
			times = append(times, time.Now())
			mu.Unlock()
			<-ctx.Done()
			return nil, ctx.Err()
		})
		svc := proxy.Chain(hanging, proxy.Breaker(br), proxy.Timeout(timeout))

		// Trip it first, so that every later backend call is a probe.
		for range 3 {
			if _, err := svc.Process(ctx, aliceReq); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Process(hanging) = %v, want %v", err, context.DeadlineExceeded)
			}
		}
		if got := br.State(); got != breaker.Open {
			t.Fatalf("State() after 3 timeouts = %v, want %v", got, breaker.Open)
		}
		tripped := calls.Load()
		mu.Lock()
		times = nil
		mu.Unlock()

		deadline := time.Now().Add(periods*(cooldown+timeout) + cooldown/2)
		var rejected atomic.Int64
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					switch _, err := svc.Process(ctx, aliceReq); {
					case errors.Is(err, proxy.ErrCircuitOpen):
						rejected.Add(1)
					case !errors.Is(err, context.DeadlineExceeded):
						t.Errorf("Process() = %v, want %v or %v", err, proxy.ErrCircuitOpen, context.DeadlineExceeded)
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			})
		}
		wg.Wait()

		n := halfOpens.Load()
		if n != periods {
			t.Errorf("half-open periods = %d, want %d", n, periods)
		}
		if got := trips.Load(); got != n+1 {
			t.Errorf("trips = %d, want %d (one, then one per failed half-open period)", got, n+1)
		}
		mu.Lock()
		defer mu.Unlock()
		slices.SortFunc(times, time.Time.Compare)
		var clusters []int
		for i, at := range times {
			if i == 0 || at.Sub(times[i-1]) > cooldown/2 {
				clusters = append(clusters, 0)
			}
			clusters[len(clusters)-1]++
		}
		if len(clusters) != int(n) {
			t.Errorf("backend calls fall into %d periods, want %d: %v", len(clusters), n, clusters)
		}
		for i, k := range clusters {
			if k > probes {
				t.Errorf("half-open period %d let %d calls reach the backend, want at most %d", i, k, probes)
			}
		}
		if got, most := calls.Load()-tripped, int64(probes)*n; got > most {
			t.Errorf("backend calls after the trip = %d, want at most %d", got, most)
		}
		if rejected.Load() == 0 {
			t.Error("no call was rejected, want most of them")
		}
	})
}

// TestBreakerLetsExactlyTheProbesThrough sends 1000 calls the instant the
// open period ends; the probes block in the backend until every caller has
// tried, so exactly the configured number reach it.
func TestBreakerLetsExactlyTheProbesThrough(t *testing.T) {
	const (
		callers  = 1000
		probes   = 5
		cooldown = 30 * time.Second
	)
	synctest.Test(t, func(t *testing.T) {
		br := breaker.New(
			breaker.WithConsecutiveFailures(1),
			breaker.WithCooldown(cooldown),
			breaker.WithHalfOpenProbes(probes),
		)
		var entered atomic.Int64
		release := make(chan struct{})
		failing := true
		backend := proxy.ServiceFunc(func(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
			if failing {
				return nil, errBreakerBackend
			}
			entered.Add(1)
			<-release
			return breakerResp, nil
		})
		svc := proxy.Chain(backend, proxy.Breaker(br))
		_, _ = svc.Process(ctx, aliceReq)
		failing = false
		time.Sleep(cooldown + time.Nanosecond)

		var ok, tooMany atomic.Int64
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				switch _, err := svc.Process(ctx, aliceReq); {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, proxy.ErrCircuitOpen) && errors.Is(err, breaker.ErrTooManyRequests):
					tooMany.Add(1)
				default:
					t.Errorf("Process() = %v, want nil or a half-open rejection", err)
				}
			})
		}
		synctest.Wait()
		if got := entered.Load(); got != probes {
			t.Errorf("backend calls while half-open = %d, want %d", got, probes)
		}
		if got := tooMany.Load(); got != callers-probes {
			t.Errorf("rejected calls = %d, want %d", got, callers-probes)
		}
		close(release)
		wg.Wait()
		if got := ok.Load(); got != probes {
			t.Errorf("successful calls = %d, want %d", got, probes)
		}
		if got := br.State(); got != breaker.Closed {
			t.Errorf("State() = %v, want %v", got, breaker.Closed)
		}
	})
}

func TestBreakerNilPanics(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"Breaker(nil)", func() { proxy.Breaker(nil) }},
		{"Breaker(b)(nil)", func() { proxy.Breaker(breaker.New())(nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			panicMessage(t, tt.f)
		})
	}
}

// breakerOK answers without allocating, so that the benchmarks measure the
// middleware alone.
var breakerOK = proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
	return breakerResp, nil
})

func BenchmarkBreaker(b *testing.B) {
	benchProcess(b, proxy.Chain(breakerOK, proxy.Breaker(breaker.New())), aliceReq)
}

// BenchmarkBreakerBaseline is the same service behind a bare gobreaker
// Execute with the breaker's default settings: the yardstick for
// BenchmarkBreaker.
func BenchmarkBreakerBaseline(b *testing.B) {
	cb := gobreaker.NewCircuitBreaker[*proxy.Response](gobreaker.Settings{
		Interval:     breaker.DefaultInterval,
		BucketPeriod: breaker.DefaultInterval / 10,
		Timeout:      breaker.DefaultCooldown,
		ReadyToTrip:  func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= breaker.DefaultConsecutiveFailures },
		IsExcluded:   func(err error) bool { return err != nil && errors.Is(err, context.Canceled) },
	})
	call := func() (*proxy.Response, error) { return breakerOK.Process(ctx, aliceReq) }
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cb.Execute(call); err != nil {
				b.Fatalf("Execute() = %v, want nil", err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := cb.Execute(call); err != nil {
					b.Errorf("Execute() = %v, want nil", err)
					return
				}
			}
		})
	})
}
