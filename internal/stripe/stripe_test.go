package stripe_test

import (
	"runtime"
	"sync"
	"testing"

	"github.com/proxykit/proxy/internal/stripe"
)

func TestPickInRange(t *testing.T) {
	p := stripe.New()
	if want := min(runtime.GOMAXPROCS(0), stripe.Max); p.N() != want {
		t.Fatalf("N() = %d, want %d", p.N(), want)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if i := p.Pick(); i < 0 || i >= p.N() {
					t.Errorf("Pick() = %d, want one of [0, %d)", i, p.N())
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestPickIsStickyOnOneProcessor checks that, with one goroutine on its
// own, Pick keeps returning the same stripe (the pool's private slot of
// the processor), which is what keeps a core on its own cache lines. A
// GC may empty the pool and move the goroutine to another stripe once;
// 1000 picks in a row see at most a few changes.
func TestPickIsStickyOnOneProcessor(t *testing.T) {
	if runtime.GOMAXPROCS(0) == 1 {
		t.Skip("one processor: one stripe")
	}
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items at random")
	}
	p := stripe.New()
	last, changes := p.Pick(), 0
	for range 1000 {
		if i := p.Pick(); i != last {
			last, changes = i, changes+1
		}
	}
	if changes > 3 {
		t.Errorf("the stripe changed %d times in 1000 picks on one goroutine, want at most 3", changes)
	}
}

func BenchmarkPick(b *testing.B) {
	p := stripe.New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = p.Pick()
		}
	})
}
