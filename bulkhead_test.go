package proxy_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/bulkhead"
)

// TestBulkheadSlowBackend sends 100 concurrent calls at a slow backend
// through a limit of 10: the backend, counting for itself, never sees more
// than 10 at once; the others are shed with ErrOverloaded after the bounded
// wait or served once a place frees within it.
func TestBulkheadSlowBackend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var inFlight, peak, calls atomic.Int64
		slow := proxy.ServiceFunc(func(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
			calls.Add(1)
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(100 * time.Millisecond)
			return &proxy.Response{RequestID: req.ID}, nil
		})
		const wait = 150 * time.Millisecond
		svc := proxy.Chain(slow, proxy.Bulkhead(bulkhead.New(10, bulkhead.WithMaxWait(wait)), nil))
		var served, shed atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range 100 {
			wg.Go(func() {
				_, err := svc.Process(t.Context(), &proxy.Request{ID: "r", Service: "inventory"})
				switch {
				case err == nil:
					served.Add(1)
				case errors.Is(err, proxy.ErrOverloaded) && errors.Is(err, bulkhead.ErrFull):
					shed.Add(1)
					if d := time.Since(start); d > wait {
						t.Errorf("shed after %v, want within the %v wait", d, wait)
					}
				default:
					t.Errorf("Process = %v, want nil or ErrOverloaded", err)
				}
			})
		}
		wg.Wait()
		if got := peak.Load(); got > 10 {
			t.Errorf("backend saw %d calls at once, want at most 10", got)
		}
		// The first 10 are served at once, the next 10 after 100ms (within
		// the 150ms wait); the remaining 80 are shed at 150ms.
		if served.Load() != 20 || shed.Load() != 80 || calls.Load() != 20 {
			t.Errorf("served, shed, backend calls = %d, %d, %d; want 20, 80, 20",
				served.Load(), shed.Load(), calls.Load())
		}
	})
}

func TestBulkheadPassesErrorsAndReleasesOnPanic(t *testing.T) {
	bh := bulkhead.New(1)
	errDeclined := errors.New("card declined")
	fail := proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		return nil, errDeclined
	})
	if _, err := proxy.Chain(fail, proxy.Bulkhead(bh, nil)).Process(t.Context(), aliceReq); err != errDeclined {
		t.Errorf("Process = %v, want the service's own error unchanged", err)
	}

	boom := proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		panic("boom")
	})
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want the service's panic re-raised", r)
			}
		}()
		_, _ = proxy.Chain(boom, proxy.Bulkhead(bh, nil)).Process(t.Context(), aliceReq)
	}()
	if got := bh.InFlight(aliceReq.Service); got != 0 {
		t.Errorf("InFlight after a panic = %d, want 0 (place released)", got)
	}
}

func TestBulkheadCancelledWhileWaitingIsNotOverloaded(t *testing.T) {
	bh := bulkhead.New(1, bulkhead.WithMaxWait(time.Hour))
	require.NoError(t, bh.Acquire(t.Context(), "echo"))
	defer bh.Release("echo")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := proxy.Chain(echo, proxy.Bulkhead(bh, nil)).Process(ctx, aliceReq)
	if !errors.Is(err, context.Canceled) || errors.Is(err, proxy.ErrOverloaded) {
		t.Errorf("Process with a cancelled ctx = %v, want Canceled and not ErrOverloaded", err)
	}
}

func TestBulkheadNilPanics(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"Bulkhead(nil, nil)", func() { proxy.Bulkhead(nil, nil) }},
		{"Bulkhead(bh, nil)(nil)", func() { proxy.Bulkhead(bulkhead.New(1), nil)(nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			panicMessage(t, tt.f)
		})
	}
}

func BenchmarkBulkhead(b *testing.B) {
	benchProcess(b, proxy.Chain(instrumentedStatic, proxy.Bulkhead(bulkhead.New(1<<20), nil)), aliceReq)
}
