package bulkhead_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/proxykit/proxy/bulkhead"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestHundredCallersLimitTen runs 100 concurrent calls of a slow backend
// through a limit of 10 with a short wait: the backend never sees more than
// 10 at once, the rest are shed after the wait, and nobody waits longer.
func TestHundredCallersLimitTen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const wait = 50 * time.Millisecond
		bh := bulkhead.New(10, bulkhead.WithMaxWait(wait))
		var inFlight, peak, served, shed atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range 100 {
			wg.Go(func() {
				if err := bh.Acquire(t.Context(), "svc"); err != nil {
					if !errors.Is(err, bulkhead.ErrFull) {
						t.Errorf("Acquire = %v, want ErrFull", err)
					}
					if waited := time.Since(start); waited > wait {
						t.Errorf("shed after %v, want at most %v", waited, wait)
					}
					shed.Add(1)
					return
				}
				n := inFlight.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(time.Second) // the slow backend
				inFlight.Add(-1)
				bh.Release("svc")
				served.Add(1)
			})
		}
		wg.Wait()
		if got := peak.Load(); got != 10 {
			t.Errorf("peak in flight = %d, want 10", got)
		}
		if served.Load() != 10 || shed.Load() != 90 {
			t.Errorf("served, shed = %d, %d; want 10, 90", served.Load(), shed.Load())
		}
		if got := bh.InFlight("svc"); got != 0 {
			t.Errorf("InFlight after all calls = %d, want 0", got)
		}
	})
}

// TestWaiterGetsFreedSlot checks that a caller waiting within its bound is
// served as soon as a place frees up.
func TestWaiterGetsFreedSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bh := bulkhead.New(1, bulkhead.WithMaxWait(time.Second))
		if err := bh.Acquire(t.Context(), "k"); err != nil {
			t.Fatalf("first Acquire = %v", err)
		}
		got := make(chan error, 1)
		go func() { got <- bh.Acquire(t.Context(), "k") }()
		time.Sleep(300 * time.Millisecond)
		synctest.Wait()
		select {
		case err := <-got:
			t.Fatalf("second Acquire returned %v while the place was held", err)
		default:
		}
		start := time.Now()
		bh.Release("k")
		if err := <-got; err != nil {
			t.Fatalf("second Acquire after Release = %v, want nil", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("waiter served %v after Release, want at once", d)
		}
		bh.Release("k")
	})
}

// TestWaitersAreServedInOrder checks that places given back go to the
// callers that wait, first come first served, and not to a caller that
// arrives after them.
func TestWaitersAreServedInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bh := bulkhead.New(1, bulkhead.WithMaxWait(time.Hour))
		if err := bh.Acquire(t.Context(), "k"); err != nil {
			t.Fatalf("first Acquire = %v", err)
		}
		served := make(chan string, 3)
		for _, name := range []string{"second", "third"} {
			go func() {
				if err := bh.Acquire(t.Context(), "k"); err != nil {
					t.Errorf("%s Acquire = %v, want nil", name, err)
				}
				served <- name
			}()
			synctest.Wait() // queued before the next one comes
		}
		for _, want := range []string{"second", "third"} {
			bh.Release("k")
			synctest.Wait()
			if got := <-served; got != want {
				t.Fatalf("place handed to the %s caller, want the %s", got, want)
			}
			if n := bh.InFlight("k"); n != 1 {
				t.Fatalf("InFlight after the hand-off = %d, want 1", n)
			}
		}
		bh.Release("k")
		if n, keys := bh.InFlight("k"), bh.Keys(); n != 0 || keys != 1 {
			t.Errorf("InFlight, Keys after the last Release = %d, %d, want 0, 1", n, keys)
		}
	})
}

func TestAcquireHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bh := bulkhead.New(1, bulkhead.WithMaxWait(time.Hour))
		if err := bh.Acquire(t.Context(), "k"); err != nil {
			t.Fatal(err)
		}
		defer bh.Release("k")

		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := bh.Acquire(ctx, "k")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Acquire past deadline = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 200*time.Millisecond {
			t.Errorf("Acquire returned after %v, want 200ms", d)
		}

		cancelled, cancelNow := context.WithCancel(t.Context())
		cancelNow()
		if err := bh.Acquire(cancelled, "other"); !errors.Is(err, context.Canceled) {
			t.Errorf("Acquire with a cancelled ctx = %v, want Canceled", err)
		}
		if got := bh.InFlight("other"); got != 0 {
			t.Errorf("InFlight after a refused Acquire = %d, want 0", got)
		}
	})
}

func TestKeysAreIndependentAndIdleKeysBounded(t *testing.T) {
	bh := bulkhead.New(1, bulkhead.WithMaxIdleKeys(2))
	ctx := t.Context()
	if err := bh.Acquire(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := bh.Acquire(ctx, "b"); err != nil {
		t.Errorf(`Acquire("b") while "a" is full = %v, want nil`, err)
	}
	if err := bh.Acquire(ctx, "a"); !errors.Is(err, bulkhead.ErrFull) {
		t.Errorf(`second Acquire("a") = %v, want ErrFull`, err)
	}
	bh.Release("a")
	bh.Release("b")
	for i := range 100 {
		k := string(rune('c' + i))
		if err := bh.Acquire(ctx, k); err != nil {
			t.Fatal(err)
		}
		bh.Release(k)
	}
	if got := bh.Keys(); got > 2 {
		t.Errorf("Keys() after 102 idle keys = %d, want at most 2", got)
	}
}

func TestReleaseWithoutAcquirePanics(t *testing.T) {
	bh := bulkhead.New(2)
	defer func() {
		if r := recover(); r == nil {
			t.Error("Release without Acquire did not panic")
		}
	}()
	bh.Release("nobody")
}

func TestNewPanicsOnBadSettings(t *testing.T) {
	for name, f := range map[string]func(){
		"zero limit":     func() { bulkhead.New(0) },
		"negative wait":  func() { bulkhead.New(1, bulkhead.WithMaxWait(-time.Second)) },
		"negative idles": func() { bulkhead.New(1, bulkhead.WithMaxIdleKeys(-1)) },
		"nil option":     func() { bulkhead.New(1, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); !strings.HasPrefix(fmt.Sprint(r), "bulkhead: ") {
					t.Errorf("%s: panicked with %v, want a \"bulkhead: \" panic", name, r)
				}
			}()
			f()
		})
	}
}

func TestConcurrentInvariant(t *testing.T) {
	bh := bulkhead.New(3, bulkhead.WithMaxWait(time.Millisecond))
	var inFlight atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 200 {
				if bh.Acquire(t.Context(), "k") != nil {
					continue
				}
				if n := inFlight.Add(1); n > 3 {
					t.Errorf("in flight = %d, want at most 3", n)
				}
				inFlight.Add(-1)
				bh.Release("k")
			}
		})
	}
	wg.Wait()
	if got := bh.InFlight("k"); got != 0 {
		t.Errorf("InFlight after hammering = %d, want 0", got)
	}
}

// TestConcurrentManyKeys hammers more keys than are kept idle, so that
// keys are dropped and added again while other calls use them.
func TestConcurrentManyKeys(t *testing.T) {
	const keys, limit, maxIdle = 40, 2, 4
	bh := bulkhead.New(limit, bulkhead.WithMaxIdleKeys(maxIdle), bulkhead.WithMaxWait(time.Millisecond))
	var inFlight [keys]atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 300 {
				k := (g*7 + i*13) % keys
				key := string(rune('a' + k))
				if bh.Acquire(t.Context(), key) != nil {
					continue
				}
				if n := inFlight[k].Add(1); n > limit {
					t.Errorf("in flight for %q = %d, want at most %d", key, n, limit)
				}
				inFlight[k].Add(-1)
				bh.Release(key)
			}
		})
	}
	wg.Wait()
	for k := range keys {
		if got := bh.InFlight(string(rune('a' + k))); got != 0 {
			t.Errorf("InFlight(%q) after hammering = %d, want 0", string(rune('a'+k)), got)
		}
	}
	if got := bh.Keys(); got > maxIdle {
		t.Errorf("Keys() after hammering = %d, want at most %d", got, maxIdle)
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	bh := bulkhead.New(1 << 20)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := bh.Acquire(ctx, "k"); err != nil {
			b.Fatal(err)
		}
		bh.Release("k")
	}
}

func BenchmarkAcquireReleaseParallel(b *testing.B) {
	bh := bulkhead.New(1 << 20)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := bh.Acquire(ctx, "k"); err != nil {
				b.Fatal(err)
			}
			bh.Release("k")
		}
	})
}
