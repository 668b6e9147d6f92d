package redislimit_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/internal/clocktest"
	"github.com/proxykit/proxy/internal/redistest"
	"github.com/proxykit/proxy/redislimit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:                  addr,
		MaxRetries:            -1,   // the limiter's own timeout and retry interval decide
		ContextTimeoutEnabled: true, // through the context's deadline
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestBurstThenRetryAfter(t *testing.T) {
	srv := redistest.Start(t)
	lim := redislimit.New(newClient(t, srv.Addr()), 10, 3)
	ctx := t.Context()
	for i := range 3 {
		ok, _, err := lim.Limit(ctx, "alice")
		if !ok || err != nil {
			t.Fatalf("Limit call %d = %v, %v; want true, nil (within the burst)", i, ok, err)
		}
	}
	ok, retryAfter, err := lim.Limit(ctx, "alice")
	if ok || err != nil {
		t.Fatalf("Limit after the burst = %v, %v; want false, nil", ok, err)
	}
	if retryAfter <= 0 || retryAfter > 100*time.Millisecond {
		t.Errorf("retryAfter = %v, want in (0, 100ms] at 10/s", retryAfter)
	}
	if ok, _, _ := lim.Limit(ctx, "bob"); !ok {
		t.Error(`Limit("bob") = false: keys are not independent`)
	}
	if !lim.Healthy() || lim.Stats().RedisErrors != 0 {
		t.Errorf("Healthy, Stats = %v, %+v; want true, no errors", lim.Healthy(), lim.Stats())
	}
}

// TestTwoReplicasShareOneLimit runs two limiters on separate clients, as two
// gateway replicas would, under concurrent load for 5 s of real time: together
// they admit within 2% of what one limiter at 100/s with burst 10 would.
func TestTwoReplicasShareOneLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("5 s load test")
	}
	srv := redistest.Start(t)
	const rate, burst = 100, 10
	replicas := []*redislimit.Limiter{
		redislimit.New(newClient(t, srv.Addr()), rate, burst, redislimit.WithTimeout(time.Second)),
		redislimit.New(newClient(t, srv.Addr()), rate, burst, redislimit.WithTimeout(time.Second)),
	}
	var admitted, errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(5 * time.Second)
	for _, lim := range replicas {
		for range 4 {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					ok, _, err := lim.Limit(context.Background(), "shared-user")
					if err != nil {
						errs.Add(1)
					}
					if ok {
						admitted.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	want := burst + rate*elapsed.Seconds()
	got := float64(admitted.Load())
	t.Logf("admitted %v in %v; one limiter would admit %.1f", got, elapsed, want)
	if got < want*0.98 || got > want*1.02 {
		t.Errorf("two replicas admitted %v, want within 2%% of %.1f", got, want)
	}
	for _, lim := range replicas {
		if s := lim.Stats(); s.RedisErrors != 0 || errs.Load() != 0 {
			t.Errorf("Stats = %+v, errors = %d; want none", s, errs.Load())
		}
	}
}

// TestRedisStoppedAndRestarted stops Redis in the middle of a run and starts
// it again, under each failure mode, through the Limited wrapper as a
// service would use it.
func TestRedisStoppedAndRestarted(t *testing.T) {
	tests := []struct {
		mode redislimit.FailureMode
		// wantWhileDown says whether calls are served while Redis is down.
		wantWhileDown bool
	}{
		{redislimit.FailOpen, true},
		{redislimit.FailClosed, false},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			srv := redistest.Start(t)
			clk := clocktest.New(time.Now())
			const retry = 200 * time.Millisecond
			// One token every 10 s, so nothing refills during the test; the
			// local fallback gets half of the burst of 200.
			lim := redislimit.New(newClient(t, srv.Addr()), 0.1, 200,
				redislimit.WithFailureMode(tt.mode), redislimit.WithReplicas(2),
				redislimit.WithRetryInterval(retry), redislimit.WithClock(clk),
				// Generous, so a loaded machine cannot turn a slow answer
				// into a failure; TestHungRedisIsBoundedByTimeout checks the
				// timeout itself.
				redislimit.WithTimeout(2*time.Second))
			echo := proxy.ServiceFunc(func(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
				return &proxy.Response{RequestID: req.ID}, nil
			})
			svc := proxy.Chain(echo, proxy.Limited(lim, proxy.KeyByUser))
			call := func() error {
				_, err := svc.Process(t.Context(), &proxy.Request{ID: "r", UserID: "alice"})
				return err
			}
			for range 10 {
				if err := call(); err != nil {
					t.Fatalf("with Redis up: Process = %v", err)
				}
			}

			srv.Stop()
			for i := range 50 {
				err := call()
				switch {
				case tt.wantWhileDown && err != nil:
					t.Fatalf("call %d with Redis down under fail-open = %v, want served", i, err)
				case !tt.wantWhileDown && !errors.Is(err, proxy.ErrRateLimited):
					t.Fatalf("call %d with Redis down under fail-closed = %v, want ErrRateLimited", i, err)
				}
			}
			if lim.Healthy() {
				t.Error("Healthy() with Redis down = true")
			}
			// Only the first call, and one per retry interval after it, may
			// try Redis; the fake clock has not moved, so that is one call.
			if got := lim.Stats().RedisErrors; got != 1 {
				t.Errorf("Redis errors while down = %d, want 1 (the rest skip Redis)", got)
			}

			srv.Restart()
			clk.Advance(retry)
			if err := call(); err != nil {
				t.Fatalf("first call after Redis is back = %v", err)
			}
			if !lim.Healthy() {
				t.Fatalf("Healthy() one retry interval (%v) after Redis is back = false", retry)
			}
			// The shared limit is in force again: a fresh Redis has a full
			// burst of 200 for alice, and the 201st call is refused by Redis
			// itself.
			for range 199 {
				if err := call(); err != nil {
					t.Fatalf("within the shared burst: %v", err)
				}
			}
			if err := call(); !errors.Is(err, proxy.ErrRateLimited) {
				t.Errorf("call past the shared burst = %v, want ErrRateLimited", err)
			}
		})
	}
}

// TestHungRedisIsBoundedByTimeout points the limiter at a server that
// accepts connections and never answers: every decision still comes back,
// bounded by the limiter's timeout, and fail-open serves from the local
// limiter.
func TestHungRedisIsBoundedByTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { <-stop; _ = c.Close() })
		}
	}()
	t.Cleanup(func() { _ = l.Close(); close(stop); conns.Wait() })

	// The client's own timeouts are seconds long: only the limiter's
	// timeout, through the context, can end the call sooner.
	client := redis.NewClient(&redis.Options{Addr: l.Addr().String(), MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })
	var deadlines []time.Duration
	var mu sync.Mutex
	client.AddHook(deadlineHook{record: func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		deadlines = append(deadlines, d)
	}})
	const timeout = 30 * time.Millisecond
	lim := redislimit.New(client, 10, 5, redislimit.WithTimeout(timeout))
	// A bounded test context: if the limiter's timeout did not bound the
	// call, this one would end it with an error, and the test would fail.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	ok, _, err := lim.Limit(ctx, "alice")
	if !ok || err != nil {
		t.Fatalf("Limit with a hung Redis = %v, %v; want true, nil from the local fallback", ok, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(deadlines) == 0 {
		t.Fatal("no Redis command was sent")
	}
	for _, d := range deadlines {
		if d > timeout {
			t.Errorf("a Redis command had %v to run, want at most the %v timeout", d, timeout)
		}
	}
}

// deadlineHook records how long each Redis command was given by its ctx.
type deadlineHook struct{ record func(time.Duration) }

func (deadlineHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h deadlineHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if dl, ok := ctx.Deadline(); ok {
			h.record(time.Until(dl))
		} else {
			h.record(time.Duration(1<<63 - 1))
		}
		return next(ctx, cmd)
	}
}

func (h deadlineHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func TestNewPanicsOnBadSettings(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })
	plain := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = plain.Close() })
	for name, f := range map[string]func(){
		"client without context timeouts": func() { redislimit.New(plain, 1, 1) },
		"nil client":                      func() { redislimit.New(nil, 1, 1) },
		"zero rate":                       func() { redislimit.New(client, 0, 1) },
		"negative burst":                  func() { redislimit.New(client, 1, -1) },
		"zero timeout":                    func() { redislimit.WithTimeout(0) },
		"zero replicas":                   func() { redislimit.WithReplicas(0) },
		"unknown mode":                    func() { redislimit.WithFailureMode(9) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		})
	}
}

func BenchmarkLimit(b *testing.B) {
	srv := redistest.Start(b)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	b.Cleanup(func() { _ = client.Close() })
	lim := redislimit.New(client, 1e9, 1<<30)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := lim.Limit(ctx, "bench"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
