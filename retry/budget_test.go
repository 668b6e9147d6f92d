package retry_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxykit/proxy/internal/clocktest"
	"github.com/proxykit/proxy/retry"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// budgetStep advances the clock, makes successes successful calls, then
// one call that always fails, and wants that call to make wantCalls calls.
type budgetStep struct {
	name      string
	advance   time.Duration
	successes int
	wantCalls int64
}

func runBudgetSteps(t *testing.T, p *retry.Policy, clk *clocktest.Clock, steps []budgetStep) {
	t.Helper()
	ok := func(context.Context) error { return nil }
	for i, s := range steps {
		clk.Advance(s.advance)
		for range s.successes {
			if err := p.Do(t.Context(), ok); err != nil {
				t.Fatalf("step %d (%s): Do(ok) = %v, want nil", i, s.name, err)
			}
		}
		c := failing(p.MaxAttempts(), errTransient)
		err := p.Do(t.Context(), c.op)
		if got := c.calls.Load(); got != s.wantCalls {
			t.Errorf("step %d (%s): Do(failing) made %d calls, want %d", i, s.name, got, s.wantCalls)
		}
		exhausted := s.wantCalls < int64(p.MaxAttempts())
		if got := errors.Is(err, retry.ErrBudgetExhausted); got != exhausted {
			t.Errorf("step %d (%s): errors.Is(%v, ErrBudgetExhausted) = %v, want %v", i, s.name, err, got, exhausted)
		}
		if !errors.Is(err, errTransient) {
			t.Errorf("step %d (%s): Do(failing) = %v, want it to match %v", i, s.name, err, errTransient)
		}
	}
}

func TestBudgetRatio(t *testing.T) {
	clk := clocktest.New(t0)
	p := retry.New(retry.WithBudget(0.5, 0), retry.WithClock(clk), noWait)
	runBudgetSteps(t, p, clk, []budgetStep{
		{"starts empty", 0, 0, 1},                // 0.5 saved
		{"one call earns half a retry", 0, 0, 2}, // 1 saved, 1 spent
		{"successes earn too", 0, 3, 3},          // 2 saved, 2 spent
		{"fills to capacity 10", 0, 100, 3},      // 10 saved, 2 spent: 8 left
		{"drains", 0, 0, 3},                      // 8.5, 6.5 left
		{"drains", 0, 0, 3},                      // 7, 5 left
		{"drains", 0, 0, 3},                      // 5.5, 3.5 left
		{"drains", 0, 0, 3},                      // 4, 2 left
		{"drains", 0, 0, 3},                      // 2.5, 0.5 left
		{"last retry", 0, 0, 2},                  // 1, 0 left
		{"empty", time.Hour, 0, 1},               // no reserve: time earns nothing
	})
}

func TestBudgetReserve(t *testing.T) {
	clk := clocktest.New(t0)
	p := retry.New(retry.WithBudget(0, 2), retry.WithClock(clk), noWait) // capacity 20
	var steps []budgetStep
	for range 10 {
		steps = append(steps, budgetStep{"starts with 10s of reserve", 0, 0, 3})
	}
	steps = append(steps, []budgetStep{
		{"reserve spent", 0, 0, 1},
		{"half a second earns one", 500 * time.Millisecond, 0, 2},
		{"a second earns two", time.Second, 0, 3},
		{"a quarter earns half", 250 * time.Millisecond, 0, 1},
		{"halves add up", 250 * time.Millisecond, 0, 2},
		{"clock goes back", -time.Minute, 0, 1},
		{"earns nothing until it catches up", time.Minute + 500*time.Millisecond, 0, 2},
		{"an hour fills to capacity 20", time.Hour, 0, 3},
	}...)
	for range 9 {
		steps = append(steps, budgetStep{"drains", 0, 0, 3})
	}
	steps = append(steps, budgetStep{"empty", 0, 0, 1})
	runBudgetSteps(t, p, clk, steps)
}

func TestBudgetRefundsUnusedRetry(t *testing.T) {
	clk := clocktest.New(t0)
	var cancelOnRetry atomic.Pointer[context.CancelFunc]
	p := retry.New(retry.WithBudget(1, 0), retry.WithClock(clk), noWait,
		retry.WithOnRetry(func(context.Context, int, error, time.Duration) {
			if cancel := cancelOnRetry.Load(); cancel != nil {
				(*cancel)()
			}
		}))
	ctx, cancel := context.WithCancel(t.Context())
	cancelOnRetry.Store(&cancel)
	c := failing(3, errTransient)
	if err := p.Do(ctx, c.op); !errors.Is(err, context.Canceled) {
		t.Fatalf("Do(cancelled during wait) = %v, want context.Canceled", err)
	}
	if got := c.calls.Load(); got != 1 {
		t.Fatalf("Do(cancelled during wait) made %d calls, want 1", got)
	}
	cancelOnRetry.Store(nil)
	// The retry the cancelled call took was given back: 1 + 1 saved.
	c = failing(3, errTransient)
	_ = p.Do(t.Context(), c.op)
	if got := c.calls.Load(); got != 3 {
		t.Errorf("Do(failing) after a refund made %d calls, want 3", got)
	}
}

// TestBudgetAfterAnAge checks that a reserve earned over a clock jump
// larger than any bucket (two centuries, at a million retries a second)
// fills the bucket rather than overflowing it.
func TestBudgetAfterAnAge(t *testing.T) {
	clk := clocktest.New(t0)
	p := retry.New(retry.WithBudget(0, 1e6), retry.WithClock(clk), noWait)
	clk.Set(t0.AddDate(200, 0, 0))
	runBudgetSteps(t, p, clk, []budgetStep{{"two centuries later", 0, 0, 3}})
}

// TestBudgetBoundsLoad is the case: a backend that fails half of its
// calls at random, three attempts. With a 10% budget the backend sees at most
// 1.10 calls per caller call; without one, about 1 + 0.5 + 0.25 = 1.75.
func TestBudgetBoundsLoad(t *testing.T) {
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
			rng := rand.New(rand.NewPCG(1, 2))
			var backend int
			op := func(context.Context) error {
				backend++
				if rng.IntN(2) == 0 {
					return errTransient
				}
				return nil
			}
			p := retry.New(tt.budget, retry.WithClock(clocktest.New(t0)), noWait)
			for range calls {
				_ = p.Do(t.Context(), op)
			}
			if got := float64(backend) / calls; got < tt.min || got > tt.max {
				t.Errorf("backend calls per call = %.3f, want within [%.2f, %.2f]", got, tt.min, tt.max)
			}
		})
	}
}

// TestBudgetConcurrent hammers one budget from many goroutines under the
// race detector: the retries never exceed what the calls deposited.
func TestBudgetConcurrent(t *testing.T) {
	const (
		goroutines = 8
		perG       = 500
		ratio      = 0.1
	)
	p := retry.New(retry.WithBudget(ratio, 0), retry.WithClock(clocktest.New(t0)), noWait)
	var backend atomic.Int64
	op := func(context.Context) error {
		backend.Add(1)
		return errTransient
	}
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range perG {
				_ = p.Do(t.Context(), op)
			}
		})
	}
	wg.Wait()
	retries := backend.Load() - goroutines*perG
	if limit := int64(ratio * goroutines * perG); retries > limit || retries < limit/2 {
		t.Errorf("retries = %d, want within [%d, %d]", retries, limit/2, limit)
	}
}
