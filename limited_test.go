package proxy_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/internal/clocktest"
	"github.com/proxykit/proxy/ratelimit"
)

var limitedT0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// limitedBackend is a service that counts its calls and answers with resp
// and err.
type limitedBackend struct {
	calls atomic.Int64
	resp  *proxy.Response
	err   error
}

func (b *limitedBackend) Process(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
	b.calls.Add(1)
	return b.resp, b.err
}

func limitedOKBackend() *limitedBackend {
	return &limitedBackend{resp: &proxy.Response{RequestID: "req_1", Service: "echo"}}
}

// limitedScript is a Limiter that returns fixed results and records the keys
// it was asked about.
type limitedScript struct {
	ok         bool
	retryAfter time.Duration
	err        error
	keys       []string
}

func (s *limitedScript) Limit(_ context.Context, key string) (bool, time.Duration, error) {
	s.keys = append(s.keys, key)
	return s.ok, s.retryAfter, s.err
}

var errLimitedStoreDown = errors.New("store unreachable")

func TestLimitedTranslatesDecisions(t *testing.T) {
	tests := []struct {
		name       string
		limiter    limitedScript
		wantCalls  int64
		wantErr    error // matched with errors.Is
		wantLimit  bool  // whether the error is a *RateLimitError
		wantRetry  time.Duration
		wantResult proxy.Outcome
	}{
		{"admitted", limitedScript{ok: true}, 1, nil, false, 0, proxy.OutcomeOK},
		{"rejected", limitedScript{retryAfter: 3 * time.Second}, 0, proxy.ErrRateLimited, true, 3 * time.Second, proxy.OutcomeRateLimited},
		{"rejected, wait unknown", limitedScript{}, 0, proxy.ErrRateLimited, true, 0, proxy.OutcomeRateLimited},
		{"limiter failed", limitedScript{err: errLimitedStoreDown}, 0, errLimitedStoreDown, false, 0, proxy.OutcomeError},
		{"context cancelled", limitedScript{err: context.Canceled}, 0, context.Canceled, false, 0, proxy.OutcomeCanceled},
		{"deadline exceeded", limitedScript{err: context.DeadlineExceeded}, 0, context.DeadlineExceeded, false, 0, proxy.OutcomeTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			backend := limitedOKBackend()
			svc := proxy.Chain(backend, proxy.Limited(&tt.limiter, proxy.KeyByUser))
			resp, err := svc.Process(t.Context(), aliceReq)
			if tt.wantErr == nil {
				if err != nil || resp != backend.resp {
					t.Fatalf("Process() = %v, %v, want the backend's response, nil", resp, err)
				}
			} else if !errors.Is(err, tt.wantErr) || resp != nil {
				t.Fatalf("Process() = %v, %v, want nil, an error matching %v", resp, err, tt.wantErr)
			}
			if got := backend.calls.Load(); got != tt.wantCalls {
				t.Errorf("backend calls = %d, want %d", got, tt.wantCalls)
			}
			var rle *proxy.RateLimitError
			if got := errors.As(err, &rle); got != tt.wantLimit {
				t.Fatalf("errors.As(%v, *RateLimitError) = %v, want %v", err, got, tt.wantLimit)
			}
			if rle != nil && (rle.Key != "alice" || rle.RetryAfter != tt.wantRetry) {
				t.Errorf("RateLimitError = %+v, want Key alice, RetryAfter %v", *rle, tt.wantRetry)
			}
			if tt.limiter.err != nil && errors.Is(err, proxy.ErrRateLimited) {
				t.Errorf("errors.Is(%v, ErrRateLimited) = true for a limiter failure, want false", err)
			}
			if got := proxy.OutcomeOf(err); got != tt.wantResult {
				t.Errorf("OutcomeOf(%v) = %v, want %v", err, got, tt.wantResult)
			}
			if len(tt.limiter.keys) != 1 || tt.limiter.keys[0] != "alice" {
				t.Errorf("Limit was asked about keys %q, want [alice]", tt.limiter.keys)
			}
		})
	}
}

func TestLimitedPerUser(t *testing.T) {
	clk := clocktest.New(limitedT0)
	lim := ratelimit.New(1, 1, ratelimit.WithClock(clk)) // 1 call/s per user, burst 1
	backend := limitedOKBackend()
	svc := proxy.Chain(backend, proxy.Limited(lim, proxy.KeyByUser))
	bobReq := &proxy.Request{ID: "req_2", UserID: "bob", Service: "echo"}

	steps := []struct {
		advance   time.Duration
		req       *proxy.Request
		wantRetry time.Duration // 0: admitted
	}{
		{0, aliceReq, 0},
		{0, aliceReq, time.Second},
		{0, bobReq, 0}, // bob has his own limit
		{999 * time.Millisecond, aliceReq, time.Millisecond},
		{time.Millisecond, aliceReq, 0},
		{0, bobReq, 0},
		{0, bobReq, time.Second},
	}
	for i, st := range steps {
		clk.Advance(st.advance)
		_, err := svc.Process(t.Context(), st.req)
		var rle *proxy.RateLimitError
		switch {
		case st.wantRetry == 0 && err != nil:
			t.Fatalf("step %d: Process(%s) = %v, want nil", i, st.req.UserID, err)
		case st.wantRetry != 0 && (!errors.As(err, &rle) || rle.Key != st.req.UserID || rle.RetryAfter != st.wantRetry):
			t.Fatalf("step %d: Process(%s) = %v, want a RateLimitError for %s, retry after %v", i, st.req.UserID, err, st.req.UserID, st.wantRetry)
		}
	}
	if got := backend.calls.Load(); got != 4 {
		t.Errorf("backend calls = %d, want 4 (rejected calls are not passed on)", got)
	}
}

func TestLimitedPassesTheServiceThroughUnchanged(t *testing.T) {
	errLimitedDeclined := errors.New("card declined")
	var gotReq *proxy.Request
	backend := proxy.ServiceFunc(func(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
		gotReq = req
		return &proxy.Response{RequestID: req.ID}, errLimitedDeclined
	})
	svc := proxy.Chain(backend, proxy.Limited(ratelimit.New(rate.Inf, 0), proxy.KeyByUser))
	resp, err := svc.Process(t.Context(), aliceReq)
	if !errors.Is(err, errLimitedDeclined) || errors.Is(err, proxy.ErrRateLimited) {
		t.Fatalf("Process() error = %v, want the service's own error", err)
	}
	if err.Error() != errLimitedDeclined.Error() {
		t.Errorf("Process() error = %q, want %q unwrapped", err, errLimitedDeclined)
	}
	if resp == nil || resp.RequestID != aliceReq.ID {
		t.Errorf("Process() response = %+v, want the service's", resp)
	}
	if gotReq != aliceReq {
		t.Errorf("the service got request %p, want the caller's %p", gotReq, aliceReq)
	}
}

func TestLimitedWaits(t *testing.T) {
	newSvc := func() (proxy.Service, *limitedBackend) {
		// 10 calls/s, burst 1, waits of up to a second.
		lim := ratelimit.New(10, 1, ratelimit.WithMaxWait(time.Second))
		backend := limitedOKBackend()
		return proxy.Chain(backend, proxy.Limited(lim, proxy.KeyByUser)), backend
	}
	t.Run("waits, then admits", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			svc, backend := newSvc()
			svc.Process(t.Context(), aliceReq)
			start := time.Now()
			if _, err := svc.Process(t.Context(), aliceReq); err != nil {
				t.Fatalf("Process() = %v, want nil after a wait", err)
			}
			if got, want := time.Since(start), 100*time.Millisecond; got != want {
				t.Errorf("Process() waited %v, want %v", got, want)
			}
			if got := backend.calls.Load(); got != 2 {
				t.Errorf("backend calls = %d, want 2", got)
			}
		})
	})
	t.Run("refuses at once past the deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			svc, backend := newSvc()
			svc.Process(t.Context(), aliceReq)
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := svc.Process(ctx, aliceReq)
			var rle *proxy.RateLimitError
			if !errors.As(err, &rle) || !errors.Is(err, proxy.ErrRateLimited) || rle.RetryAfter != 100*time.Millisecond {
				t.Fatalf("Process() = %v, want a RateLimitError, retry after 100ms", err)
			}
			if waited := time.Since(start); waited != 0 {
				t.Errorf("Process() waited %v, want no wait", waited)
			}
			if got := backend.calls.Load(); got != 1 {
				t.Errorf("backend calls = %d, want 1", got)
			}
		})
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			svc, backend := newSvc()
			svc.Process(t.Context(), aliceReq)
			ctx, cancel := context.WithCancel(t.Context())
			errs := make(chan error)
			go func() {
				_, err := svc.Process(ctx, aliceReq)
				errs <- err
			}()
			synctest.Wait() // the call is waiting for its token
			start := time.Now()
			cancel()
			err := <-errs
			if !errors.Is(err, context.Canceled) || errors.Is(err, proxy.ErrRateLimited) {
				t.Fatalf("Process() cancelled = %v, want context.Canceled", err)
			}
			if waited := time.Since(start); waited != 0 {
				t.Errorf("Process() returned %v after cancel, want at once", waited)
			}
			if got := backend.calls.Load(); got != 1 {
				t.Errorf("backend calls = %d, want 1", got)
			}
		})
	})
}

func TestLimitedConcurrentCallers(t *testing.T) {
	const (
		users = 4
		calls = 50 // per user, at one instant: only the burst gets through
		burst = 5
	)
	lim := ratelimit.New(1, burst, ratelimit.WithClock(clocktest.New(limitedT0)))
	backend := limitedOKBackend()
	svc := proxy.Chain(backend, proxy.Limited(lim, proxy.KeyByUser))
	var limited atomic.Int64
	var wg sync.WaitGroup
	for u := range users {
		req := &proxy.Request{ID: "req", UserID: "user" + strconv.Itoa(u)}
		for range calls {
			wg.Go(func() {
				_, err := svc.Process(t.Context(), req)
				switch {
				case errors.Is(err, proxy.ErrRateLimited):
					limited.Add(1)
				case err != nil:
					t.Errorf("Process() = %v, want nil or a rate limit", err)
				}
			})
		}
	}
	wg.Wait()
	if got, want := backend.calls.Load(), int64(users*burst); got != want {
		t.Errorf("backend calls = %d, want %d", got, want)
	}
	if got, want := limited.Load(), int64(users*(calls-burst)); got != want {
		t.Errorf("rate-limited calls = %d, want %d", got, want)
	}
}

func TestLimitedPanicsOnNil(t *testing.T) {
	tests := []struct {
		name string
		call func()
	}{
		{"nil limiter", func() { proxy.Limited(nil, proxy.KeyByUser) }},
		{"nil key func", func() { proxy.Limited(ratelimit.New(1, 1), nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			panicMessage(t, tt.call)
		})
	}
}

// limitedBenchUsers are the requests of the benchmarks: 1000 users.
func limitedBenchUsers() []*proxy.Request {
	reqs := make([]*proxy.Request, 1000)
	for i := range reqs {
		reqs[i] = &proxy.Request{ID: "req", UserID: "user-" + strconv.Itoa(i), Service: "echo"}
	}
	return reqs
}

// limitedBench measures svc's success path over 1000 users, serially and
// from parallel goroutines.
func limitedBench(b *testing.B, svc proxy.Service) {
	reqs := limitedBenchUsers()
	ctx := b.Context()
	for _, r := range reqs {
		svc.Process(ctx, r)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := svc.Process(ctx, reqs[i%len(reqs)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var seq atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(seq.Add(1)) * 7919 // start the goroutines on different users
			for pb.Next() {
				if _, err := svc.Process(ctx, reqs[i%len(reqs)]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}

// The benchmarks admit every call (a rate no benchmark reaches).
const (
	limitedBenchRate  = rate.Limit(1e12)
	limitedBenchBurst = 1 << 30
)

var limitedBenchResponse = &proxy.Response{RequestID: "req", Service: "echo"}

var limitedBenchBackend = proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
	return limitedBenchResponse, nil
})

func BenchmarkLimited(b *testing.B) {
	lim := ratelimit.New(limitedBenchRate, limitedBenchBurst)
	limitedBench(b, proxy.Chain(limitedBenchBackend, proxy.Limited(lim, proxy.KeyByUser)))
}

// BenchmarkLimitedBaseline is what Limited is measured against: a bare
// middleware with a sync.Map of per-user *rate.Limiter, unbounded.
func BenchmarkLimitedBaseline(b *testing.B) {
	var limiters sync.Map
	bare := func(next proxy.Service) proxy.Service {
		return proxy.ServiceFunc(func(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
			l, ok := limiters.Load(req.UserID)
			if !ok {
				l, _ = limiters.LoadOrStore(req.UserID, rate.NewLimiter(limitedBenchRate, limitedBenchBurst))
			}
			if !l.(*rate.Limiter).Allow() {
				return nil, &proxy.RateLimitError{Key: req.UserID}
			}
			return next.Process(ctx, req)
		})
	}
	limitedBench(b, proxy.Chain(limitedBenchBackend, bare))
}
