package proxy

import (
	"context"
	"fmt"
	"time"

	"github.com/proxykit/proxy/ratelimit"
)

// A Limiter is the rate-limit mechanism behind [Limited]: it decides whether
// a call counted under a key may proceed. *[ratelimit.Limiter] implements it
// in memory; an adapter to a store shared by several processes (Redis)
// implements it over the network, which is why Limit takes a context and may
// fail. Implementations must be safe for concurrent use.
type Limiter interface {
	// Limit spends one unit of key's allowance and reports whether the call
	// may proceed, having waited first if the limiter's policy says so (and
	// never past ctx's deadline). When it may not, retryAfter is how long
	// until it could, zero if unknown. A non-nil err means the limiter
	// could not decide: ctx was done (err matches ctx.Err()) or its store
	// failed.
	Limit(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
}

var _ Limiter = (*ratelimit.Limiter)(nil)

// Limited returns a middleware that rate-limits calls by the key that key
// chooses from each request ([KeyByUser], [KeyByService] or any [KeyFunc]).
// A call that l admits goes to the wrapped service unchanged, and the
// service's results, errors included, come back unchanged. A call that l
// rejects is not passed on: it fails with a *[RateLimitError] carrying the
// key and the time to wait, which matches [ErrRateLimited].
//
// Limited fails closed: when l cannot decide (its store is unreachable, or
// ctx is done while it waits), the call fails with l's error, wrapped (so
// [errors.Is] still finds context.Canceled or the store's error), and the
// service is not called. A limiter that should rather fail open reports ok
// for its own failures.
//
// Limited waits only if l does: a *[ratelimit.Limiter] built with
// [ratelimit.WithMaxWait] holds a call back until its token is due, within
// that bound and ctx's deadline, and rejects it at once otherwise.
//
// Place Limited after Validated, so that malformed requests spend no tokens
// and are not keyed by garbage, and before Cached, so that a cache hit still
// counts as a call the user made (put Cached outside Limited if hits should
// be free). Outside Retrying, a call counts once however many attempts it
// takes.
//
// Limited panics if l or key is nil.
func Limited(l Limiter, key KeyFunc) Middleware {
	if l == nil {
		panic("proxy: Limited with a nil Limiter")
	}
	if key == nil {
		panic("proxy: Limited with a nil KeyFunc")
	}
	return func(next Service) Service {
		return ServiceFunc(func(ctx context.Context, req *Request) (*Response, error) {
			k := key(req)
			ok, retryAfter, err := l.Limit(ctx, k)
			if err != nil {
				return nil, fmt.Errorf("proxy: rate limiter: %w", err)
			}
			if !ok {
				return nil, &RateLimitError{Key: k, RetryAfter: retryAfter}
			}
			return next.Process(ctx, req)
		})
	}
}
