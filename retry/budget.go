package retry

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// The budget counts in micro-retries, so that a ratio such as 0.1 is an exact
// whole number of units and a deposit is one integer addition.
const budgetUnit = 1_000_000

// The budget holds at most what its reserve earns over budgetWindow, and never
// less than budgetMinRetries retries.
const (
	budgetWindow     = 10 * time.Second
	budgetMinRetries = 10
)

// budgetMaxUnits bounds capacity and deposits (about a million retries), so
// that a full bucket plus every concurrent caller's overshoot cannot overflow.
const budgetMaxUnits = 1 << 40

// A budget is a token bucket of retries, after the retry budgets of Finagle,
// Envoy and gRPC's retry throttling. Each call deposits ratio tokens, each
// second adds perSecond tokens, and each retry spends one; the bucket holds
// at most capacity tokens. It starts with what perSecond earns in
// budgetWindow, which is nothing without a reserve. It is safe for concurrent
// use.
//
// Deposits happen on every call, so they are lock-free and clock-free: one
// atomic load, plus one atomic add while the bucket is below capacity. The
// time-based reserve is derived lazily when a retry asks for a token.
type budget struct {
	tokens   atomic.Int64 // in budgetUnit per retry; may briefly exceed capacity
	deposit  int64        // units added per call
	capacity int64        // units
	refill   float64      // units added per second
	clock    Clock

	// mu guards last.
	mu   sync.Mutex
	last time.Time // when the reserve was last added to tokens
}

func newBudget(ratio, perSecond float64, clock Clock) *budget {
	capacity := max(budgetMinRetries, perSecond*budgetWindow.Seconds())
	b := &budget{
		deposit:  int64(math.Min(math.Round(ratio*budgetUnit), budgetMaxUnits)),
		capacity: int64(math.Min(capacity*budgetUnit, budgetMaxUnits)),
		refill:   perSecond * budgetUnit,
		clock:    clock,
	}
	if b.deposit == 0 && ratio > 0 {
		b.deposit = 1 // the smallest ratio we can represent, rather than none
	}
	if b.refill > 0 {
		// Start with what the reserve earns over one window, as if the
		// budget had been idle that long, so a new policy can retry at once.
		b.last = clock.Now().Add(-budgetWindow)
	}
	return b
}

// onCall records a call. In the steady state of a healthy backend the bucket
// is full and this is a single atomic load, so concurrent callers do not
// contend on a cache line. Concurrent callers may overshoot capacity by a
// deposit each; withdraw clamps the excess away.
func (b *budget) onCall() {
	if b.tokens.Load() < b.capacity {
		b.tokens.Add(b.deposit)
	}
}

// withdraw spends one retry and reports whether there was one to spend.
func (b *budget) withdraw() bool {
	var add int64
	if b.refill > 0 {
		now := b.clock.Now() // the caller's clock: read it under no lock
		b.mu.Lock()
		add = b.earnedLocked(now)
		b.mu.Unlock()
	}
	for {
		old := b.tokens.Load()
		v := min(old+add, b.capacity)
		ok := v >= budgetUnit
		if ok {
			v -= budgetUnit
		} else if v == old {
			return false
		}
		if b.tokens.CompareAndSwap(old, v) {
			return ok
		}
	}
}

// refund returns a retry withdrawn for an attempt that never happened.
func (b *budget) refund() {
	b.tokens.Add(budgetUnit)
}

// earnedLocked returns the units the reserve has earned from last to now and
// moves last on. Time that earned less than one unit stays in the account.
func (b *budget) earnedLocked(now time.Time) int64 {
	elapsed := now.Sub(b.last)
	if elapsed <= 0 {
		return 0 // no time passed, or the clock went back: nothing earned
	}
	earned := elapsed.Seconds() * b.refill
	if earned < 1 {
		return 0
	}
	b.last = now
	return int64(math.Min(earned, float64(b.capacity)))
}
