package proxy

import (
	"context"
	"fmt"

	"github.com/proxykit/proxy/balance"
)

// Balanced returns a [Service] that sends each call to one instance of pool,
// an interchangeable set of Services, and reports to pool how the call went,
// so that an instance that keeps failing is ejected for a while. An instance
// that also has a Health(ctx) error method is checked actively once the
// caller has called pool.Start; the caller owns pool and closes it.
//
// The [Response] names the instance that answered: when the instance left
// its Instance field empty, Balanced returns a copy of the response with
// the field set, and never changes the instance's own. Errors pass through
// unchanged. When no instance is eligible, Process fails at once with an
// error that matches [ErrNoHealthyInstance] (and
// [balance.ErrNoHealthyInstance]), without calling any instance.
//
// What a call says about its instance follows [OutcomeOf]: a success, and a
// caller's mistake the instance rejected (invalid, unauthenticated,
// forbidden), show the instance working; a timeout, an open circuit and any
// other error count as its failure; a rate-limit rejection and a caller's
// cancellation, and a call shed by a Bulkhead, count neither way. A panic in
// the instance counts as its failure and is re-raised.
//
// Balanced is the innermost layer, below Retrying, Breaker and Timeout: each
// retry then picks an instance afresh, so that a call that failed on one
// instance is retried on another (round robin moves on by itself, and the
// failure counts towards ejecting the first); Timeout bounds each attempt on
// one instance, and its deadline counts against that instance; a Breaker
// outside sees the pool as one service and opens only when the pool as a
// whole is failing. Balanced is a Service rather than a [Middleware], so it
// comes first in [Chain]:
//
//	svc := proxy.Chain(proxy.Balanced(pool),
//		proxy.Retrying(policy),
//		proxy.Breaker(br),
//		proxy.Timeout(time.Second),
//	)
//
// Balanced panics if pool is nil.
func Balanced(pool *balance.Balancer[Service]) Service {
	if pool == nil {
		panic("proxy: Balanced with a nil Balancer")
	}
	return &balanced{pool: pool}
}

type balanced struct {
	pool *balance.Balancer[Service]
}

func (s *balanced) Process(ctx context.Context, req *Request) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lease, err := s.pool.Pick()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoHealthyInstance, err)
	}
	done := false
	defer func() {
		if !done { // the instance panicked: count it, and let the panic go on
			lease.Done(balance.Failure)
		}
	}()
	resp, err := lease.Instance().Process(ctx, req)
	done = true
	lease.Done(balancedResult(err))
	if resp != nil && resp.Instance == "" {
		// The instance may hand the same Response to several calls (a
		// static answer, a cache of its own): name the instance on a copy.
		named := *resp
		named.Instance = lease.Name()
		resp = &named
	}
	return resp, err
}

// balancedResult says what a call's error says about the instance.
func balancedResult(err error) balance.Result {
	switch OutcomeOf(err) {
	case OutcomeOK, OutcomeInvalid, OutcomeUnauthenticated, OutcomeForbidden:
		return balance.Success
	case OutcomeRateLimited, OutcomeOverloaded, OutcomeCanceled:
		return balance.Neutral
	default:
		return balance.Failure
	}
}
