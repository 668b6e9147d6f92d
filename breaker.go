package proxy

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/proxykit/proxy/breaker"
)

// Breaker returns a middleware that passes each call through the circuit
// breaker b (see package [breaker]). While b is closed, calls go to the
// wrapped service; once too many have failed, b opens and the middleware
// answers at once, without calling the service, with an error that matches
// both [ErrCircuitOpen] and b's own rejection ([breaker.ErrOpen], or
// [breaker.ErrTooManyRequests] when the half-open probes are all taken).
// The service's own errors pass through unchanged.
//
// Only failures of the service count towards a trip. A call that ends with
// an error matching [context.Canceled] (the caller gave up), or with one of
// the caller's own mistakes or rejections made before the service, matching
// [ErrInvalidRequest], [ErrUnauthenticated], [ErrForbidden] or
// [ErrRateLimited], counts neither as a success nor as a failure, whatever
// b's classifier says (b's classifier may exclude more). An error matching
// [context.DeadlineExceeded] is a failure: the service was too slow. A call
// whose context is already done when it arrives is answered with ctx.Err()
// and reaches neither b nor the service. A panic in the service is a failure
// and is raised again. A call that outlasts b's counting window
// ([breaker.WithInterval], one minute by default) counts neither way, so the
// Timeout inside must be shorter than that window.
//
// Breaker belongs inside Retrying and outside Timeout and Balanced.
// Retrying outside it makes each retry a fresh decision of the breaker, and
// a rejection by an open breaker is not retried in a tight loop. Timeout
// inside it turns a service that hangs into a [context.DeadlineExceeded]
// failure that the breaker counts. Balanced inside it makes one breaker
// guard the service as a whole, while Balanced routes around single bad
// instances.
//
// Several services should each have a breaker of their own, so that one
// failing service does not stop calls to the others. The middleware costs
// one call of [breaker.Breaker.Do] and, on the success path and when
// rejecting, no allocation. Breaker panics if b is nil.
func Breaker(b *breaker.Breaker) Middleware {
	if b == nil {
		panic("proxy: Breaker with a nil *breaker.Breaker")
	}
	// The rejections are made once, so that answering while the service is
	// down costs no allocation.
	name := ""
	if b.Name() != "" {
		name = "breaker " + strconv.Quote(b.Name()) + ": "
	}
	open := fmt.Errorf("%w: %s%w", ErrCircuitOpen, name, breaker.ErrOpen)
	busy := fmt.Errorf("%w: %s%w", ErrCircuitOpen, name, breaker.ErrTooManyRequests)
	return func(next Service) Service {
		if next == nil {
			panic("proxy: Breaker wrapping a nil Service")
		}
		return &breakerService{b: b, next: next, open: open, busy: busy}
	}
}

// breakerService is the Service Breaker returns.
type breakerService struct {
	b          *breaker.Breaker
	next       Service
	open, busy error
}

var _ Service = (*breakerService)(nil)

func (s *breakerService) Process(ctx context.Context, req *Request) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err // a caller already out of time must not count against the service
	}
	var (
		resp   *Response
		err    error
		called bool
	)
	rejected := s.b.Do(func() error {
		called = true
		resp, err = s.next.Process(ctx, req)
		if err != nil && breakerIgnores(err) {
			return breaker.Exclude(err)
		}
		return err
	})
	if called {
		return resp, err
	}
	// gobreaker returns its sentinels as they are: compare them before
	// walking the chain, which costs more than the rest of a rejection.
	switch {
	case rejected == breaker.ErrOpen || errors.Is(rejected, breaker.ErrOpen):
		return nil, s.open
	case rejected == breaker.ErrTooManyRequests || errors.Is(rejected, breaker.ErrTooManyRequests):
		return nil, s.busy
	default: // not a rejection gobreaker makes today; keep it matchable all the same
		return nil, fmt.Errorf("%w: %w", ErrCircuitOpen, rejected)
	}
}

// breakerIgnores reports whether err says nothing about the health of the
// service behind a breaker: a cancellation, or the caller's own mistake.
func breakerIgnores(err error) bool {
	return errors.Is(err, context.Canceled) ||
		errors.Is(err, ErrInvalidRequest) ||
		errors.Is(err, ErrUnauthenticated) ||
		errors.Is(err, ErrForbidden) ||
		errors.Is(err, ErrRateLimited)
}
