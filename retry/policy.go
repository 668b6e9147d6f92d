package retry

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// A Policy decides whether, when and how often a failed call is tried
// again: a maximum number of attempts, jittered exponential backoff between
// them, a classifier of the errors worth retrying, and a retry budget shared
// by all of its calls. It is safe for concurrent use; use one Policy per
// backend, since its budget counts every call made through it.
//
// Use [New]. The zero Policy makes one attempt and never retries.
type Policy struct {
	maxAttempts int
	initial     time.Duration
	maxDelay    time.Duration
	multiplier  float64
	jitter      float64
	retryable   func(error) bool
	onRetry     func(ctx context.Context, attempt int, err error, delay time.Duration)
	clock       Clock
	budget      *budget // nil: no budget
}

// New returns a Policy configured by opts. Without options it tries a call
// up to [DefaultMaxAttempts] times, waits [DefaultInitialDelay] (±50%)
// before the first retry and twice as long before each next one, up to
// [DefaultMaxDelay], retries what [DefaultRetryable] allows, and spends at
// most the default budget ([DefaultBudgetRatio] of the calls plus
// [DefaultBudgetMinPerSecond]) on retries. New starts no goroutine.
func New(opts ...Option) *Policy {
	c := config{
		maxAttempts:  DefaultMaxAttempts,
		initial:      DefaultInitialDelay,
		maxDelay:     DefaultMaxDelay,
		multiplier:   DefaultMultiplier,
		jitter:       DefaultJitter,
		budget:       true,
		budgetRatio:  DefaultBudgetRatio,
		budgetPerSec: DefaultBudgetMinPerSecond,
		clock:        systemClock{},
	}
	for _, opt := range opts {
		if opt == nil {
			panic("retry: New with a nil Option")
		}
		opt(&c)
	}
	p := &Policy{
		maxAttempts: c.maxAttempts,
		initial:     c.initial,
		maxDelay:    c.maxDelay,
		multiplier:  c.multiplier,
		jitter:      c.jitter,
		retryable:   c.retryable,
		onRetry:     c.onRetry,
		clock:       c.clock,
	}
	if c.budget && c.maxAttempts > 1 {
		p.budget = newBudget(c.budgetRatio, c.budgetPerSec, c.clock)
	}
	return p
}

// MaxAttempts returns how many times the policy tries a call in all.
func (p *Policy) MaxAttempts() int { return max(p.maxAttempts, 1) }

// Do calls op until it returns nil, or returns an error that is not to be
// retried, or the attempts, the budget or ctx run out. Each attempt calls op
// afresh with ctx. An error is retried only when [DefaultRetryable] and the
// [WithRetryable] classifier (if any) report it retryable and it is not
// [Permanent]. See [Policy.DoIf] for the rest of the contract.
func (p *Policy) Do(ctx context.Context, op func(ctx context.Context) error) error {
	return p.do(ctx, DefaultRetryable, op)
}

// DoIf is [Policy.Do] with retryable as the classification to start from in
// place of [DefaultRetryable]: an error is retried only when retryable and
// the [WithRetryable] classifier (if any) both report true for it and it is
// not [Permanent]. A wrapper that knows its errors, such as proxy.Retrying,
// passes its own. It panics if retryable is nil.
//
// # Time
//
// Between attempts DoIf waits the backoff delay, on a timer it always stops,
// and returns as soon as ctx is done: it never waits past ctx's deadline, and
// a wait that the deadline cuts short returns at the deadline with an error
// that matches [context.DeadlineExceeded] (or [context.Canceled]). The first
// attempt is op's to refuse; once ctx is done no further attempt is made.
//
// # Errors
//
// DoIf returns nil when an attempt succeeded. When op was called once and
// nothing else is to be said (the error was not retryable, or the policy
// allows one attempt), it returns op's error unchanged. Otherwise it returns
// an *[Error] that joins every attempt's error and, when the retries stopped
// for ctx or the budget, ctx's error or [ErrBudgetExhausted]; errors.Is and
// errors.As match any of them.
//
// # Cost
//
// A call whose first attempt succeeds costs one atomic load of the budget
// (plus an add while it is not full): no allocation, no clock read, no
// backoff state. The backoff is made on the first failure. A panic in op is
// not recovered.
func (p *Policy) DoIf(ctx context.Context, retryable func(error) bool, op func(ctx context.Context) error) error {
	if retryable == nil {
		panic("retry: DoIf with a nil classifier")
	}
	return p.do(ctx, retryable, op)
}

func (p *Policy) do(ctx context.Context, retryable func(error) bool, op func(ctx context.Context) error) error {
	if p.budget != nil {
		p.budget.onCall()
	}
	err := op(ctx)
	if err == nil {
		return nil
	}
	return p.retry(ctx, retryable, op, err)
}

// retry is the failure path of do, after a first attempt failed with err.
func (p *Policy) retry(ctx context.Context, retryable func(error) bool, op func(ctx context.Context) error, err error) error {
	var buf [4]error // room for the usual attempts, on the stack
	errs := append(buf[:0], err)
	var (
		b       backoff.ExponentialBackOff // made on the first retry
		started bool
	)
	for attempt := 1; ; attempt++ {
		if cerr := ctx.Err(); cerr != nil {
			if !errors.Is(err, cerr) {
				errs = append(errs, cerr)
			}
			return fail(attempt, errs)
		}
		if attempt >= p.maxAttempts || !p.shouldRetry(retryable, err) {
			return fail(attempt, errs)
		}
		if p.budget != nil && !p.budget.withdraw() {
			return fail(attempt, append(errs, ErrBudgetExhausted))
		}
		if !started {
			p.initBackoff(&b)
			started = true
		}
		delay := b.NextBackOff()
		if p.onRetry != nil {
			p.onRetry(ctx, attempt, err, delay)
		}
		if cerr := wait(ctx, delay); cerr != nil {
			if p.budget != nil {
				p.budget.refund()
			}
			return fail(attempt, append(errs, cerr))
		}
		if err = op(ctx); err == nil {
			return nil
		}
		errs = append(errs, err)
	}
}

func (p *Policy) shouldRetry(retryable func(error) bool, err error) bool {
	return !IsPermanent(err) && retryable(err) && (p.retryable == nil || p.retryable(err))
}

func (p *Policy) initBackoff(b *backoff.ExponentialBackOff) {
	*b = backoff.ExponentialBackOff{
		InitialInterval:     p.initial,
		RandomizationFactor: p.jitter,
		Multiplier:          p.multiplier,
		MaxInterval:         p.maxDelay,
		MaxElapsedTime:      0, // never stop on time: attempts, budget and ctx bound the retries
		Stop:                backoff.Stop,
		Clock:               p.clock,
	}
	b.Reset()
}

// wait blocks for d or until ctx is done, whichever comes first, and returns
// ctx's error in the second case.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return ctx.Err() // nil, unless ctx ended at the same moment
	}
}

func fail(attempts int, errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return &Error{Attempts: attempts, Err: errors.Join(errs...)}
}
