package proxy

import (
	"context"
	"errors"

	"github.com/proxykit/proxy/retry"
)

// Retrying returns a middleware that calls the next service again when a
// call fails with a transient error, as far as p allows: its maximum
// attempts, its jittered exponential backoff between them, and its retry
// budget, which keeps a failing backend from seeing its load multiplied by
// the retries. It panics if p is nil.
//
// Each attempt calls next afresh, with the caller's ctx and the caller's
// very *[Request], which it never changes. So the layers inside decide
// again: [Balanced] picks an instance again, [Breaker] admits or rejects
// again, and [Timeout] gives the attempt a deadline of its own.
//
// # What is retried
//
// Everything the service fails with is taken as transient, except:
//
//   - [ErrInvalidRequest], [ErrUnauthenticated] and [ErrForbidden]: the
//     caller's mistakes, which get the same answer every time;
//   - [ErrRateLimited]: a limiter said no, and retrying would defeat it;
//   - [ErrOverloaded]: a [Bulkhead] shed the call to relieve the service,
//     and a retry would add the load back;
//   - [ErrCircuitOpen]: the breaker has opened on the whole service, and
//     hammering it is what the breaker is there to stop;
//   - [ErrNoHealthyInstance]: there is nowhere to send the call;
//   - errors marked with [retry.Permanent];
//   - anything, once the caller's ctx is done: its [context.Canceled] or
//     [context.DeadlineExceeded] ends the retries, and no wait outlasts
//     the caller's deadline.
//
// A [context.DeadlineExceeded] from an inner [Timeout], while the caller
// still has time, is transient: the next attempt gets a fresh deadline. A
// classifier given to the policy with [retry.WithRetryable] narrows these
// rules further; it cannot widen them.
//
// # Effects that must not happen twice
//
// Retrying resends a request whose first attempt may have taken effect
// before it failed (a reply lost, a timeout after the work was done). A
// request whose effect must not happen twice, a payment, is retried only
// because the service deduplicates on the request: every attempt carries the
// same ID and [MetaIdempotencyKey]. Do not put Retrying in front of a
// service that does not; give it a policy with [retry.WithMaxAttempts](1),
// or mark the errors it must not retry with [retry.Permanent].
//
// # Where it belongs
//
// Retrying goes outside [Breaker], [Timeout] and [Balanced], so that each
// attempt is a fresh breaker decision, has a deadline of its own and may go
// to another instance, and so that an open breaker's fast rejection ends the
// retries instead of feeding a tight loop. It goes inside [Cached], so that
// a cache hit costs no retry budget and concurrent misses share one retried
// call, and inside [Limited], so that a retry is not charged to the user as
// another request.
//
// # Results
//
// Process returns the response and error of the last attempt. When there was
// more than one attempt, or the retries stopped for the caller's ctx or the
// budget, the error is a *[retry.Error] that joins every attempt's error;
// [errors.Is] and [errors.As] still match the service's own errors in it,
// and [OutcomeOf] classifies it by them. A call whose first attempt succeeds
// costs one atomic load of the budget and no allocation.
func Retrying(p *retry.Policy) Middleware {
	if p == nil {
		panic("proxy: Retrying with a nil *retry.Policy")
	}
	return func(next Service) Service {
		if next == nil {
			panic("proxy: Retrying of a nil Service")
		}
		return &retrying{policy: p, next: next}
	}
}

// retrying is the Service that Retrying returns: a struct rather than a
// ServiceFunc closure, to save an indirect call on every request.
type retrying struct {
	policy *retry.Policy
	next   Service
}

var _ Service = (*retrying)(nil)

func (r *retrying) Process(ctx context.Context, req *Request) (*Response, error) {
	var resp *Response
	err := r.policy.DoIf(ctx, retryingTransient, func(ctx context.Context) error {
		var err error
		resp, err = r.next.Process(ctx, req)
		return err
	})
	return resp, err
}

// retryingTransient reports whether a failed call may succeed if made again.
// The caller's own ctx is Policy.DoIf's to check.
func retryingTransient(err error) bool {
	return !errors.Is(err, ErrInvalidRequest) &&
		!errors.Is(err, ErrUnauthenticated) &&
		!errors.Is(err, ErrForbidden) &&
		!errors.Is(err, ErrRateLimited) &&
		!errors.Is(err, ErrOverloaded) &&
		!errors.Is(err, ErrCircuitOpen) &&
		!errors.Is(err, ErrNoHealthyInstance)
}
