package bench_test

import (
	"context"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/go-kit/kit/endpoint"
	gokitbreaker "github.com/sony/gobreaker"

	"github.com/proxykit/proxy"
)

// The peers are used in their cheapest form that still does the job the
// proxy's wrapper does: the caller's context reaches the policies (our
// wrappers honour it), and, for a timeout, the service sees the deadline.

// viaFailsafe is the benchCall of a failsafe-go executor: the caller's ctx
// is given to the policies with WithContext, and the call is made with it.
func viaFailsafe(exec failsafe.Executor[*proxy.Response]) benchCall {
	return func(ctx context.Context, req *proxy.Request) bool {
		resp, err := exec.WithContext(ctx).Get(func() (*proxy.Response, error) {
			return backend.Process(ctx, req)
		})
		return err == nil && resp != nil
	}
}

// viaFailsafeExec is viaFailsafe for policies that change the context (a
// timeout): the service is called with the execution's context.
func viaFailsafeExec(exec failsafe.Executor[*proxy.Response]) benchCall {
	return func(ctx context.Context, req *proxy.Request) bool {
		resp, err := exec.WithContext(ctx).GetWithExecution(func(e failsafe.Execution[*proxy.Response]) (*proxy.Response, error) {
			return backend.Process(e.Context(), req)
		})
		return err == nil && resp != nil
	}
}

// kitBackend is the backend as a go-kit endpoint.
var kitBackend endpoint.Endpoint = func(ctx context.Context, request any) (any, error) {
	return backend.Process(ctx, request.(*proxy.Request))
}

// viaEndpoint is the benchCall of a go-kit endpoint.
func viaEndpoint(e endpoint.Endpoint) benchCall {
	return func(ctx context.Context, req *proxy.Request) bool {
		resp, err := e(ctx, req)
		r, _ := resp.(*proxy.Response)
		return err == nil && r != nil
	}
}

// newKitBreaker returns a go-kit breaker (sony/gobreaker v0.4, which go-kit
// v0.13 uses) configured as breaker.New's defaults are: trip after 5
// consecutive failures in a one-minute window, stay open a minute.
func newKitBreaker() *gokitbreaker.CircuitBreaker {
	return gokitbreaker.NewCircuitBreaker(gokitbreaker.Settings{
		Name:        "payment",
		MaxRequests: 1,
		Interval:    time.Minute,
		Timeout:     time.Minute,
		ReadyToTrip: func(c gokitbreaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
	})
}
