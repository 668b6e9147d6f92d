package proxy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proxykit/proxy"
)

// timeoutWaiting is a service that answers after delay, or when ctx is done,
// whichever comes first, as a well-behaved remote call does.
func timeoutWaiting(delay time.Duration) proxy.Service {
	return proxy.ServiceFunc(func(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
			return breakerResp, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
}

func TestTimeout(t *testing.T) {
	errReset := errors.New("connection reset by peer")
	tests := []struct {
		name      string
		d         time.Duration
		next      proxy.Service
		wantResp  bool
		wantErrs  []error // all must match
		wantTaken time.Duration
	}{
		{name: "in time", d: 2 * time.Second, next: timeoutWaiting(time.Second), wantResp: true, wantTaken: time.Second},
		{name: "cut short", d: 2 * time.Second, next: timeoutWaiting(time.Hour), wantErrs: []error{context.DeadlineExceeded}, wantTaken: 2 * time.Second},
		{
			name: "error that lost the deadline",
			d:    time.Second,
			next: proxy.ServiceFunc(func(ctx context.Context, _ *proxy.Request) (*proxy.Response, error) {
				<-ctx.Done()
				return nil, errReset
			}),
			wantErrs:  []error{context.DeadlineExceeded, errReset},
			wantTaken: time.Second,
		},
		{
			name: "service ignoring ctx overruns",
			d:    time.Second,
			next: proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
				time.Sleep(3 * time.Second)
				return breakerResp, nil
			}),
			wantResp:  true,
			wantTaken: 3 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				svc := proxy.Chain(tt.next, proxy.Timeout(tt.d))
				start := time.Now()
				resp, err := svc.Process(ctx, aliceReq)
				if taken := time.Since(start); taken != tt.wantTaken {
					t.Errorf("Process() took %v, want %v", taken, tt.wantTaken)
				}
				if (resp != nil) != tt.wantResp {
					t.Errorf("Process() response = %v, want one: %v", resp, tt.wantResp)
				}
				if len(tt.wantErrs) == 0 && err != nil {
					t.Errorf("Process() error = %v, want nil", err)
				}
				for _, want := range tt.wantErrs {
					if !errors.Is(err, want) {
						t.Errorf("Process() error = %v, want it to match %v", err, want)
					}
				}
			})
		})
	}
}

func TestTimeoutDeadlineAndCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			deadline time.Time
			cause    error
			inner    context.Context
		)
		svc := proxy.Chain(proxy.ServiceFunc(func(ctx context.Context, _ *proxy.Request) (*proxy.Response, error) {
			inner = ctx
			deadline, _ = ctx.Deadline()
			<-ctx.Done()
			cause = context.Cause(ctx)
			return nil, ctx.Err()
		}), proxy.Timeout(2*time.Second))
		start := time.Now()
		_, _ = svc.Process(ctx, aliceReq)
		if want := start.Add(2 * time.Second); !deadline.Equal(want) {
			t.Errorf("service's deadline = %v, want %v", deadline, want)
		}
		if !errors.Is(cause, context.DeadlineExceeded) || !strings.Contains(cause.Error(), "proxy: timeout after 2s") {
			t.Errorf("context.Cause() = %v, want the proxy's timeout, matching %v", cause, context.DeadlineExceeded)
		}
		if inner.Err() == nil {
			t.Error("the service's context is still live after Process returned, want it canceled")
		}
	})
}

// TestTimeoutWithoutDone checks a service that never waits on ctx.Done but
// polls ctx.Err between steps of work, as a CPU-bound service does: it sees
// the deadline and the proxy's cause, and the caller gets a timeout.
func TestTimeoutWithoutDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			steps int
			cause error
		)
		svc := proxy.Chain(proxy.ServiceFunc(func(ctx context.Context, _ *proxy.Request) (*proxy.Response, error) {
			for ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond) // a step of work
				steps++
			}
			cause = context.Cause(ctx)
			return nil, errors.New("stopped early")
		}), proxy.Timeout(time.Second))
		_, err := svc.Process(ctx, aliceReq)
		if steps != 10 {
			t.Errorf("the service made %d steps, want 10 (1s in steps of 100ms)", steps)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Process() = %v, want an error matching %v", err, context.DeadlineExceeded)
		}
		if !errors.Is(cause, context.DeadlineExceeded) || !strings.Contains(cause.Error(), "proxy: timeout after 1s") {
			t.Errorf("context.Cause() = %v, want the proxy's timeout", cause)
		}
	})
}

func TestTimeoutCallerDeadlineWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var deadline time.Time
		svc := proxy.Chain(proxy.ServiceFunc(func(ctx context.Context, _ *proxy.Request) (*proxy.Response, error) {
			deadline, _ = ctx.Deadline()
			return breakerResp, nil
		}), proxy.Timeout(time.Minute))
		parent, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		want, _ := parent.Deadline()
		if _, err := svc.Process(parent, aliceReq); err != nil {
			t.Fatalf("Process() = %v, want nil", err)
		}
		if !deadline.Equal(want) {
			t.Errorf("service's deadline = %v, want the caller's sooner %v", deadline, want)
		}
	})
}

func TestTimeoutCallerCancellationIsNotATimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		svc := proxy.Chain(timeoutWaiting(time.Hour), proxy.Timeout(time.Minute))
		_, err := svc.Process(parent, aliceReq)
		if !errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Process(canceled) = %v, want %v and not %v", err, context.Canceled, context.DeadlineExceeded)
		}
	})
}

func TestTimeoutPassesErrorsThrough(t *testing.T) {
	own := errors.New("insufficient funds")
	limited := &proxy.RateLimitError{Key: "alice", RetryAfter: 3 * time.Second}
	for _, want := range []error{own, limited} {
		svc := proxy.Chain(proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
			return nil, want
		}), proxy.Timeout(time.Minute))
		_, err := svc.Process(ctx, aliceReq)
		if err != want {
			t.Errorf("Process() = %#v, want the service's own %#v", err, want)
		}
		var rl *proxy.RateLimitError
		if want == error(limited) && (!errors.As(err, &rl) || rl.RetryAfter != 3*time.Second) {
			t.Errorf("errors.As(%v, *RateLimitError) = %v, want RetryAfter 3s", err, rl)
		}
	}
}

func TestTimeoutPanics(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"Timeout(0)", func() { proxy.Timeout(0) }},
		{"Timeout(-1s)", func() { proxy.Timeout(-time.Second) }},
		{"Timeout(d)(nil)", func() { proxy.Timeout(time.Second)(nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			panicMessage(t, tt.f)
		})
	}
}

func BenchmarkTimeout(b *testing.B) {
	benchProcess(b, proxy.Chain(breakerOK, proxy.Timeout(time.Minute)), aliceReq)
}
