package proxy

import (
	"context"
	"errors"
	"fmt"

	"github.com/proxykit/proxy/bulkhead"
)

// A ConcurrencyLimiter admits a bounded number of concurrent calls per key.
// *[bulkhead.Bulkhead] is one. Acquire blocks at most a bounded time and
// never past ctx's deadline; a nil error must be matched by one Release.
type ConcurrencyLimiter interface {
	Acquire(ctx context.Context, key string) error
	Release(key string)
}

var _ ConcurrencyLimiter = (*bulkhead.Bulkhead)(nil)

// Bulkhead returns a Middleware that lets at most the limiter's number of
// calls per key run at once through the layers inside it. A call over the
// limit waits as long as the limiter allows and is then shed with an error
// that matches both [ErrOverloaded] and the limiter's own error
// ([bulkhead.ErrFull]); a call whose ctx ends while waiting returns ctx's
// error. key chooses the key; nil means [KeyByService], one limit for the
// whole service.
//
// Bulkhead belongs just inside Limited and outside Cached and Retrying: a
// rate limit bounds how often calls start, a bulkhead how many run at once,
// so a slow backend cannot pile up goroutines behind it; a shed call spends
// no retry budget. A panic in the wrapped Service releases the place and is
// re-raised. It panics if lim is nil, and the Middleware panics if the
// Service it wraps is nil.
func Bulkhead(lim ConcurrencyLimiter, key KeyFunc) Middleware {
	if lim == nil {
		panic("proxy: Bulkhead with a nil ConcurrencyLimiter")
	}
	if key == nil {
		key = KeyByService
	}
	return func(next Service) Service {
		if next == nil {
			panic("proxy: Bulkhead wrapping a nil Service")
		}
		return ServiceFunc(func(ctx context.Context, req *Request) (*Response, error) {
			k := key(req)
			if err := lim.Acquire(ctx, k); err != nil {
				if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
					return nil, err
				}
				return nil, fmt.Errorf("%w: %w", ErrOverloaded, err)
			}
			defer lim.Release(k)
			return next.Process(ctx, req)
		})
	}
}
