package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/internal/clocktest"
	"github.com/proxykit/proxy/retry"
)

var (
	errRetryingDown = errors.New("backend down")
	retryingT0      = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	// retryingNoWait retries at once, for tests about counts rather than time.
	retryingNoWait = retry.WithBackoff(0, 0, 1)
)

// retryingBackend fails with the i-th error of errs on its i-th call and
// answers like echo afterwards, counting its calls and the requests it saw.
type retryingBackend struct {
	errs  []error
	calls atomic.Int64
	reqs  []*proxy.Request // not safe for concurrent calls; tests that read it call serially
}

func (b *retryingBackend) Process(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
	n := int(b.calls.Add(1))
	b.reqs = append(b.reqs, req)
	if n <= len(b.errs) {
		return nil, b.errs[n-1]
	}
	return echo.Process(ctx, req)
}

func retryingFailing(n int, err error) *retryingBackend {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return &retryingBackend{errs: errs}
}

// retryingError is a typed error of the caller's own, to match with errors.As.
type retryingError struct{ Code int }

func (e *retryingError) Error() string { return fmt.Sprintf("backend error %d", e.Code) }

func TestRetryingRetriesTransientErrors(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		failures  int
		wantCalls int64
		wantErr   bool
	}{
		{"success at once", nil, 0, 1, false},
		{"transient then success", errRetryingDown, 2, 3, false},
		{"transient every time", errRetryingDown, 5, 3, true},
		{"an attempt's own timeout", fmt.Errorf("attempt: %w", context.DeadlineExceeded), 2, 3, false},
		{"typed error of the service", &retryingError{Code: 502}, 1, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			backend := retryingFailing(tt.failures, tt.err)
			svc := proxy.Chain(backend, proxy.Retrying(retry.New(retryingNoWait, retry.WithoutBudget())))
			resp, err := svc.Process(t.Context(), aliceReq)
			if got := backend.calls.Load(); got != tt.wantCalls {
				t.Errorf("Process() made %d backend calls, want %d", got, tt.wantCalls)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("Process() = %v, %v, want error %v", resp, err, tt.wantErr)
			}
			if err == nil && (resp == nil || resp.RequestID != aliceReq.ID) {
				t.Errorf("Process() = %+v, want the response to %q", resp, aliceReq.ID)
			}
		})
	}
}

// TestRetryingNotRetried checks that the proxy's own rejections and the
// caller's mistakes cost exactly one call and come back unchanged.
func TestRetryingNotRetried(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"invalid request", proxy.ErrInvalidRequest},
		{"invalid request error", &proxy.InvalidRequestError{Field: "amount", Reason: "negative"}},
		{"unauthenticated", proxy.ErrUnauthenticated},
		{"forbidden", fmt.Errorf("payment: %w", proxy.ErrForbidden)},
		{"rate limited", &proxy.RateLimitError{Key: "alice", RetryAfter: time.Second}},
		{"circuit open", fmt.Errorf("%w: %w", proxy.ErrCircuitOpen, errors.New("gobreaker: circuit breaker is open"))},
		{"no healthy instance", proxy.ErrNoHealthyInstance},
		{"overloaded", fmt.Errorf("%w: %w", proxy.ErrOverloaded, errors.New("bulkhead: full"))},
		{"permanent", retry.Permanent(errRetryingDown)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			backend := retryingFailing(5, tt.err)
			svc := proxy.Chain(backend, proxy.Retrying(retry.New(retryingNoWait, retry.WithoutBudget())))
			_, err := svc.Process(t.Context(), aliceReq)
			if got := backend.calls.Load(); got != 1 {
				t.Errorf("Process() made %d backend calls, want 1", got)
			}
			if err != tt.err {
				t.Errorf("Process() = %v, want the service's error %v unchanged", err, tt.err)
			}
		})
	}
}

func TestRetryingClassifierNarrows(t *testing.T) {
	errBusy := errors.New("busy")
	p := retry.New(retryingNoWait, retry.WithoutBudget(),
		retry.WithRetryable(func(err error) bool { return errors.Is(err, errBusy) }))
	tests := []struct {
		name      string
		err       error
		wantCalls int64
	}{
		{"allowed by both", errBusy, 3},
		{"declined by the user", errRetryingDown, 1},
		{"declined by the proxy", fmt.Errorf("%w: %w", proxy.ErrForbidden, errBusy), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			backend := retryingFailing(5, tt.err)
			_, _ = proxy.Retrying(p)(backend).Process(t.Context(), aliceReq)
			if got := backend.calls.Load(); got != tt.wantCalls {
				t.Errorf("Process() made %d backend calls, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestRetryingErrorsStayMatchable(t *testing.T) {
	mine := &retryingError{Code: 503}
	backend := &retryingBackend{errs: []error{errRetryingDown, mine, fmt.Errorf("gateway: %w", mine)}}
	svc := proxy.Chain(backend, proxy.Retrying(retry.New(retryingNoWait, retry.WithoutBudget())))
	resp, err := svc.Process(t.Context(), aliceReq)
	if resp != nil {
		t.Errorf("Process() response = %+v, want nil", resp)
	}
	if !errors.Is(err, errRetryingDown) {
		t.Errorf("errors.Is(%v, %v) = false, want true", err, errRetryingDown)
	}
	if !errors.Is(err, mine) {
		t.Errorf("errors.Is(%v, the service's own *retryingError) = false, want true", err)
	}
	var got *retryingError
	if !errors.As(err, &got) || got != mine {
		t.Errorf("errors.As(%v) = %p, want the service's own pointer %p", err, got, mine)
	}
	var re *retry.Error
	if !errors.As(err, &re) || re.Attempts != 3 {
		t.Errorf("errors.As(%v, *retry.Error) = %+v, want Attempts 3", err, re)
	}
	if o := proxy.OutcomeOf(err); o != proxy.OutcomeError {
		t.Errorf("OutcomeOf(%v) = %v, want %v", err, o, proxy.OutcomeError)
	}
}

// TestRetryingSameRequest checks that every attempt gets the caller's very
// request, unchanged, and that each attempt calls next afresh, so that a
// picker inside chooses again.
func TestRetryingSameRequest(t *testing.T) {
	req := aliceReq.Clone()
	req.Metadata = map[string]string{proxy.MetaIdempotencyKey: "pay-42"}
	before := req.Clone()
	instances := []*retryingBackend{retryingFailing(1, errRetryingDown), {}}
	var picks atomic.Int64
	picker := proxy.ServiceFunc(func(ctx context.Context, r *proxy.Request) (*proxy.Response, error) {
		i := picks.Add(1) - 1
		resp, err := instances[i%2].Process(ctx, r)
		if resp != nil {
			resp.Instance = fmt.Sprint("instance-", i%2)
		}
		return resp, err
	})
	svc := proxy.Chain(picker, proxy.Retrying(retry.New(retryingNoWait, retry.WithoutBudget())))
	resp, err := svc.Process(t.Context(), req)
	if err != nil || resp.Instance != "instance-1" {
		t.Fatalf("Process() = %+v, %v, want the answer of instance-1", resp, err)
	}
	for i, b := range instances {
		if len(b.reqs) != 1 || b.reqs[0] != req {
			t.Errorf("instance %d saw %v, want the caller's request %p once", i, b.reqs, req)
		}
	}
	if !reflect.DeepEqual(req, before) {
		t.Errorf("request after Process() = %+v, want it unchanged %+v", req, before)
	}
}

func TestRetryingReturnsLastResponse(t *testing.T) {
	partial := &proxy.Response{RequestID: aliceReq.ID, Instance: "b"}
	calls := 0
	backend := proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		calls++
		if calls == 1 {
			return &proxy.Response{Instance: "a"}, errRetryingDown
		}
		return partial, proxy.ErrInvalidRequest
	})
	resp, err := proxy.Retrying(retry.New(retryingNoWait))(backend).Process(t.Context(), aliceReq)
	if resp != partial || !errors.Is(err, proxy.ErrInvalidRequest) {
		t.Errorf("Process() = %+v, %v, want the last attempt's %+v, %v", resp, err, partial, proxy.ErrInvalidRequest)
	}
}

// TestRetryingDeadline is the case: with a 200 ms deadline and a 1 s
// backoff the call returns at 200 ms with context.DeadlineExceeded, having
// made one backend call.
func TestRetryingDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := retry.New(retry.WithBackoff(time.Second, time.Second, 1), retry.WithJitter(0))
		backend := retryingFailing(5, errRetryingDown)
		svc := proxy.Chain(backend, proxy.Retrying(p))
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := svc.Process(ctx, aliceReq)
		if got, want := time.Since(start), 200*time.Millisecond; got != want {
			t.Errorf("Process() returned after %v of virtual time, want %v", got, want)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Process() = %v, want it to match context.DeadlineExceeded", err)
		}
		if o := proxy.OutcomeOf(err); o != proxy.OutcomeTimeout {
			t.Errorf("OutcomeOf(%v) = %v, want %v", err, o, proxy.OutcomeTimeout)
		}
		if got := backend.calls.Load(); got != 1 {
			t.Errorf("Process() made %d backend calls, want 1", got)
		}
	})
}

func TestRetryingCancelDuringBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := retry.New(retry.WithBackoff(time.Minute, time.Minute, 1))
		backend := retryingFailing(5, errRetryingDown)
		svc := proxy.Chain(backend, proxy.Retrying(p))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			_, err := svc.Process(ctx, aliceReq)
			done <- err
		}()
		time.Sleep(10 * time.Millisecond)
		cancel()
		err := <-done
		if got, want := time.Since(start), 10*time.Millisecond; got != want {
			t.Errorf("Process() returned %v after start, want %v (at the cancel)", got, want)
		}
		if !errors.Is(err, context.Canceled) || !errors.Is(err, errRetryingDown) {
			t.Errorf("Process() = %v, want it to match context.Canceled and %v", err, errRetryingDown)
		}
		if got := backend.calls.Load(); got != 1 {
			t.Errorf("Process() made %d backend calls, want 1", got)
		}
	})
}

// TestRetryingBudgetBoundsBackendLoad is the case: a backend that
// fails half its calls at random, three attempts. With a 10% budget the
// backend sees at most 1.10 calls per caller call; without one about 1.75,
// which is the load a budget exists to prevent. The backoff waits are real
// (virtual time in a synctest bubble).
func TestRetryingBudgetBoundsBackendLoad(t *testing.T) {
	const calls = 10_000
	tests := []struct {
		name     string
		budget   retry.Option
		min, max float64
	}{
		{"10% budget", retry.WithBudget(0.1, 0), 1.0, 1.10},
		{"no budget", retry.WithoutBudget(), 1.65, 1.85},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(7, 11))
				var backendCalls int
				backend := proxy.ServiceFunc(func(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
					backendCalls++
					if rng.IntN(2) == 0 {
						return nil, errRetryingDown
					}
					return echo.Process(ctx, req)
				})
				p := retry.New(tt.budget, retry.WithMaxAttempts(3),
					retry.WithBackoff(time.Millisecond, 10*time.Millisecond, 2),
					retry.WithClock(clocktest.New(retryingT0)))
				svc := proxy.Chain(backend, proxy.Retrying(p))
				for range calls {
					_, _ = svc.Process(t.Context(), aliceReq)
				}
				if got := float64(backendCalls) / calls; got < tt.min || got > tt.max {
					t.Errorf("backend calls per caller call = %.3f, want within [%.2f, %.2f]", got, tt.min, tt.max)
				}
			})
		})
	}
}

func TestRetryingPanicIsNotSwallowed(t *testing.T) {
	backend := proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		panic("backend bug")
	})
	svc := proxy.Retrying(retry.New(retryingNoWait))(backend)
	defer func() {
		if r := recover(); r != "backend bug" {
			t.Errorf("recover() = %v, want the backend's panic", r)
		}
	}()
	_, _ = svc.Process(t.Context(), aliceReq)
}

func TestRetryingPanicsOnNil(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"nil policy", func() { proxy.Retrying(nil) }},
		{"nil next", func() { proxy.Retrying(retry.New())(nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			panicMessage(t, tt.f)
		})
	}
}

// retryingStatic answers every call with one shared response and no
// allocation, so that the benchmarks measure the layer, not the service.
var retryingStatic = func() proxy.Service {
	resp := &proxy.Response{RequestID: aliceReq.ID, Service: aliceReq.Service}
	return proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		return resp, nil
	})
}()

func BenchmarkRetrying(b *testing.B) {
	for _, bc := range []struct {
		name string
		svc  proxy.Service
	}{
		{"direct", retryingStatic},
		{"retrying", proxy.Retrying(retry.New())(retryingStatic)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.svc.Process(ctx, aliceReq); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			ctx := b.Context()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := bc.svc.Process(ctx, aliceReq); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
