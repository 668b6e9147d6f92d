// Package retry tries a failed call again, safely: a bounded number of
// attempts, jittered exponential backoff between them, only for errors worth
// retrying, never past the caller's deadline, and within a retry budget so
// that a failing backend does not see its load multiplied by its callers'
// retries.
//
// # When to use it
//
// Use a [Policy] around a call whose failures are often transient (a
// dropped connection, an overloaded instance, an attempt that ran out of its
// own time) and whose effect may safely happen twice, or that the backend
// deduplicates (a payment keyed by its request id). Do not retry what cannot
// succeed on a second try: invalid input, a refused permission, a limiter's
// rejection. Mark such errors with [Permanent], or classify them with
// [WithRetryable] or [Policy.DoIf].
//
//	p := retry.New(retry.WithMaxAttempts(4))
//	err := p.Do(ctx, func(ctx context.Context) error {
//		return client.Send(ctx, msg)
//	})
//
// # How it composes
//
// The package knows nothing of requests: an op is any func(ctx) error, called
// afresh for each attempt, so whatever it does inside (pick a backend
// instance, consult a circuit breaker, start a per-attempt timeout) happens
// again on every attempt. The root package's proxy.Retrying turns a Policy
// into middleware with the proxy's own classification of errors. Errors come
// back unchanged when there was nothing to retry, and otherwise as an
// *[Error] that joins every attempt's error with [errors.Join], so the
// caller's own errors stay matchable with [errors.Is] and [errors.As].
//
// # Backoff
//
// The waits come from github.com/cenkalti/backoff/v4's ExponentialBackOff:
// the nominal wait before retry n is min(initial × multiplier^(n-1), max) and
// the actual wait is drawn uniformly from ±jitter of it ([WithBackoff],
// [WithJitter]). The backoff state is made on the first failure only, so a
// call that succeeds at once pays nothing for it.
//
// # Budget
//
// The retry budget ([WithBudget]) is a token bucket after the retry budgets
// of Finagle and Envoy and gRPC's retry throttling: each call deposits a
// fraction of a retry (20% by default), each second adds a reserve (10 by
// default) for callers that make few calls, and each retry spends one. When
// the backend fails everything, the retries add at most that fraction to its
// load instead of multiplying it by the number of attempts.
//
// # Concurrency and time
//
// A Policy is safe for concurrent use, and all its calls share its budget.
// It starts no goroutine: the budget is derived lazily, on each retry, from
// the [Clock] given with [WithClock] (the system clock by default), and a
// deposit is one atomic load, plus one atomic add while the bucket is not
// full. The waits between attempts are runtime timers, always stopped, that
// give way as soon as the context is done; tests run them in a
// testing/synctest bubble, where they take no real time. The [WithOnRetry]
// hook runs on the caller's goroutine under no lock.
//
// # Defaults
//
// [DefaultMaxAttempts] attempts, [DefaultInitialDelay] doubling
// ([DefaultMultiplier]) up to [DefaultMaxDelay] with [DefaultJitter], errors
// retried as [DefaultRetryable] says (all but context errors and
// [Permanent] ones), and a budget of [DefaultBudgetRatio] of the calls plus
// [DefaultBudgetMinPerSecond] retries a second.
package retry
