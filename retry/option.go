package retry

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Defaults of [New].
const (
	// DefaultMaxAttempts is how many times a call is tried in all, the
	// first attempt included.
	DefaultMaxAttempts = 3
	// DefaultInitialDelay is the wait before the first retry, before jitter.
	DefaultInitialDelay = 100 * time.Millisecond
	// DefaultMaxDelay caps the wait between attempts, before jitter.
	DefaultMaxDelay = 2 * time.Second
	// DefaultMultiplier is the factor by which the wait grows after each
	// retry.
	DefaultMultiplier = 2.0
	// DefaultJitter is the randomization factor: each wait is drawn from
	// ±50% of its nominal value.
	DefaultJitter = 0.5
	// DefaultBudgetRatio is the retries the budget allows per call: 20%.
	DefaultBudgetRatio = 0.2
	// DefaultBudgetMinPerSecond is the retries per second the budget allows
	// however few calls there are.
	DefaultBudgetMinPerSecond = 10.0
)

// A Clock tells the time. [WithClock] lets a test give a Policy a fake one
// that it advances by hand.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// An Option configures a [Policy].
type Option func(*config)

type config struct {
	maxAttempts  int
	initial      time.Duration
	maxDelay     time.Duration
	multiplier   float64
	jitter       float64
	retryable    func(error) bool
	onRetry      func(ctx context.Context, attempt int, err error, delay time.Duration)
	budget       bool
	budgetRatio  float64
	budgetPerSec float64
	clock        Clock
}

// WithMaxAttempts sets how many times a call is tried in all, the first
// attempt included: 1 never retries. The default is [DefaultMaxAttempts].
// It panics if n < 1.
func WithMaxAttempts(n int) Option {
	if n < 1 {
		panic(fmt.Sprintf("retry: WithMaxAttempts(%d): need at least 1 attempt", n))
	}
	return func(c *config) { c.maxAttempts = n }
}

// WithBackoff sets the exponential backoff between attempts: the nominal
// wait before retry n is min(initial × multiplier^(n-1), max), and the
// actual wait is drawn at random around it (see [WithJitter]). An initial of
// zero retries at once, which tests and examples may want. The defaults are
// [DefaultInitialDelay], [DefaultMaxDelay] and [DefaultMultiplier]. It
// panics if initial is negative, max is less than initial, or multiplier is
// less than 1 or not finite.
func WithBackoff(initial, max time.Duration, multiplier float64) Option {
	if initial < 0 || max < initial || !(multiplier >= 1) || math.IsInf(multiplier, 0) {
		panic(fmt.Sprintf("retry: WithBackoff(%v, %v, %v): need 0 <= initial <= max and a finite multiplier >= 1",
			initial, max, multiplier))
	}
	return func(c *config) {
		c.initial, c.maxDelay, c.multiplier = initial, max, multiplier
	}
}

// WithJitter sets the randomization factor f of the backoff: a wait whose
// nominal value is d is drawn uniformly from [d×(1-f), d×(1+f)], so that
// callers that failed together do not retry together. Zero makes the waits
// exact. The default is [DefaultJitter]. It panics unless 0 <= f <= 1.
func WithJitter(f float64) Option {
	if !(f >= 0 && f <= 1) {
		panic(fmt.Sprintf("retry: WithJitter(%v): need 0 <= f <= 1", f))
	}
	return func(c *config) { c.jitter = f }
}

// WithRetryable narrows which errors are retried: an error is retried only
// if f reports true for it as well as the classification the call starts
// from ([DefaultRetryable] for [Policy.Do], the given one for
// [Policy.DoIf]). f must be safe for concurrent use. By default nothing is
// narrowed. It panics if f is nil.
func WithRetryable(f func(err error) bool) Option {
	if f == nil {
		panic("retry: WithRetryable(nil)")
	}
	return func(c *config) { c.retryable = f }
}

// WithOnRetry sets a hook called before each retry, with the ctx of the call
// being retried, the number of the attempt that failed (1 for the first),
// its error and the wait about to start, for metrics and tracing (the ctx
// carries the call's span: tracing.RecordRetry fits here as it is). It is called on the caller's goroutine,
// under no lock, and must be safe for concurrent use. It is not called for
// a failure that is not retried. It panics if f is nil.
func WithOnRetry(f func(ctx context.Context, attempt int, err error, delay time.Duration)) Option {
	if f == nil {
		panic("retry: WithOnRetry(nil)")
	}
	return func(c *config) { c.onRetry = f }
}

// WithBudget sets the retry budget, which keeps a failing backend from
// seeing its load multiplied by the retries: over any stretch of time, the
// retries of a Policy are at most ratio × its calls, plus minPerSecond per
// second of the stretch, plus what the budget had saved at its start.
//
// It is a token bucket: each call to Do deposits ratio tokens, each second
// adds minPerSecond tokens, and each retry spends one. The bucket holds at
// most max(10, minPerSecond × 10s) tokens, so a burst of failures after a
// long calm spends at most that many retries before the ratio takes over.
// It starts with minPerSecond × 10s tokens, so that a new Policy can retry
// at once (with no reserve it starts empty and earns its first retry from
// calls). A retry that finds the bucket empty is not made, and the error
// joins [ErrBudgetExhausted].
//
// The default is [DefaultBudgetRatio] and [DefaultBudgetMinPerSecond]. It
// panics if either is negative or not finite, or if both are zero (use
// [WithMaxAttempts](1) to never retry, or [WithoutBudget]).
func WithBudget(ratio, minPerSecond float64) Option {
	if !(ratio >= 0) || math.IsInf(ratio, 0) || !(minPerSecond >= 0) || math.IsInf(minPerSecond, 0) ||
		(ratio == 0 && minPerSecond == 0) {
		panic(fmt.Sprintf("retry: WithBudget(%v, %v): need finite ratio, minPerSecond >= 0, not both zero",
			ratio, minPerSecond))
	}
	return func(c *config) {
		c.budget, c.budgetRatio, c.budgetPerSec = true, ratio, minPerSecond
	}
}

// WithoutBudget removes the retry budget: every retryable failure is retried
// up to the maximum attempts, however many calls fail. Use it only where the
// backend can take that load, or in tests.
func WithoutBudget() Option {
	return func(c *config) { c.budget = false }
}

// WithClock sets the clock the policy reads: the budget derives its
// per-second reserve from it, and the backoff is given it as its Clock. The
// waits themselves are timers of the runtime, which tests make virtual with
// testing/synctest. The default is the system clock. It panics if clk is
// nil.
func WithClock(clk Clock) Option {
	if clk == nil {
		panic("retry: WithClock(nil)")
	}
	return func(c *config) { c.clock = clk }
}
