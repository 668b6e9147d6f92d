package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/proxykit/proxy/internal/deadline"
)

// Timeout returns a middleware that gives each call at most d: it calls the
// wrapped service with a context whose deadline is d from now (or the
// caller's own deadline, if that is sooner), and cancels that context when
// the call returns. An error returned after the deadline has passed matches
// [context.DeadlineExceeded], even when the service's own error did not say
// so; the service's error stays in the chain for [errors.Is] and
// [errors.As]. [context.Cause] of the context the service sees reports the
// timeout, with d, once it has expired.
//
// The deadline costs one allocation and a clock read while the service does
// not wait on ctx.Done(): Err and Deadline are answered from the time the
// call started, and the timer that closes Done is armed only when Done is
// first asked for (by a select, or by a context derived from ctx). A service
// that waits on Done pays about what [context.WithTimeoutCause] costs, on
// top.
//
// Timeout is synchronous: it starts no goroutine of its own and does not
// abandon the call. It relies on the service honouring ctx, as every
// [Service] must; a service that ignores ctx overruns d, and its answer,
// when it comes, is returned as it is.
//
// Timeout belongs inside Breaker, so that a call cut short counts as a
// failure of the service, and inside Retrying, so that each attempt gets a
// deadline of its own and a retry is not started with no time left; a
// second Timeout outside Retrying bounds the whole call. It goes outside
// Balanced, whose instance choice is then bounded too.
//
// Timeout panics if d is not positive.
func Timeout(d time.Duration) Middleware {
	if d <= 0 {
		panic("proxy: Timeout(" + d.String() + "): the timeout must be positive")
	}
	cause := fmt.Errorf("proxy: timeout after %v: %w", d, context.DeadlineExceeded)
	return func(next Service) Service {
		if next == nil {
			panic("proxy: Timeout wrapping a nil Service")
		}
		return &timeoutService{d: d, cause: cause, next: next}
	}
}

// timeoutService is the Service Timeout returns.
type timeoutService struct {
	d     time.Duration
	cause error // the context's cause when d runs out; matches DeadlineExceeded
	next  Service
}

var _ Service = (*timeoutService)(nil)

func (s *timeoutService) Process(ctx context.Context, req *Request) (*Response, error) {
	tctx := deadline.New(ctx, s.d, s.cause)
	defer tctx.Finish()
	resp, err := s.next.Process(tctx, req)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && errors.Is(tctx.Err(), context.DeadlineExceeded) {
		// The deadline passed, but the service's error lost it (a closed
		// connection, say): make it matchable without dropping the original.
		err = fmt.Errorf("%w: %w", context.Cause(tctx), err)
	}
	return resp, err
}
