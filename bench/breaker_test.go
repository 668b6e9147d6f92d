package bench_test

import (
	"context"
	"errors"
	"testing"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	kitbreaker "github.com/go-kit/kit/circuitbreaker"
	gokitbreaker "github.com/sony/gobreaker"
	"github.com/sony/gobreaker/v2"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/breaker"
)

var errBenchFail = errors.New("bench: backend failed")

// newBareBreaker returns the gobreaker v2 breaker.New builds on, with the
// same counting window and trip rule, used bare.
func newBareBreaker() *gobreaker.CircuitBreaker[*proxy.Response] {
	return gobreaker.NewCircuitBreaker[*proxy.Response](gobreaker.Settings{
		MaxRequests:  breaker.DefaultHalfOpenProbes,
		Interval:     breaker.DefaultInterval,
		BucketPeriod: breaker.DefaultInterval / 10,
		Timeout:      breaker.DefaultCooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= breaker.DefaultConsecutiveFailures
		},
	})
}

// newFailsafeBreaker returns a failsafe-go breaker with breaker.New's
// defaults: 5 consecutive failures trip it for a minute.
func newFailsafeBreaker() circuitbreaker.CircuitBreaker[*proxy.Response] {
	return circuitbreaker.NewBuilder[*proxy.Response]().
		WithFailureThreshold(breaker.DefaultConsecutiveFailures).
		WithDelay(breaker.DefaultCooldown).
		Build()
}

// BenchmarkBreaker measures a closed breaker letting a successful call
// through.
func BenchmarkBreaker(b *testing.B) {
	run(b, "ours", viaService(proxy.Chain(backend, proxy.Breaker(breaker.New()))))

	bare := newBareBreaker()
	run(b, "bare", func(ctx context.Context, req *proxy.Request) bool {
		resp, err := bare.Execute(func() (*proxy.Response, error) { return backend.Process(ctx, req) })
		return err == nil && resp != nil
	})

	run(b, "failsafe", viaFailsafe(failsafe.With[*proxy.Response](newFailsafeBreaker())))
	run(b, "gokit", viaEndpoint(kitbreaker.Gobreaker(newKitBreaker())(kitBackend)))
}

// BenchmarkBreakerOpen measures an open breaker rejecting a call.
func BenchmarkBreakerOpen(b *testing.B) {
	rejected := func(call func(ctx context.Context, req *proxy.Request) error, want error) benchCall {
		return func(ctx context.Context, req *proxy.Request) bool {
			return errors.Is(call(ctx, req), want)
		}
	}

	br := breaker.New()
	for range breaker.DefaultConsecutiveFailures {
		_ = br.Do(func() error { return errBenchFail })
	}
	ours := proxy.Chain(backend, proxy.Breaker(br))
	run(b, "ours", rejected(func(ctx context.Context, req *proxy.Request) error {
		_, err := ours.Process(ctx, req)
		return err
	}, proxy.ErrCircuitOpen))

	bare := newBareBreaker()
	for range breaker.DefaultConsecutiveFailures {
		_, _ = bare.Execute(func() (*proxy.Response, error) { return nil, errBenchFail })
	}
	run(b, "bare", rejected(func(ctx context.Context, req *proxy.Request) error {
		_, err := bare.Execute(func() (*proxy.Response, error) { return backend.Process(ctx, req) })
		return err
	}, gobreaker.ErrOpenState))

	fcb := newFailsafeBreaker()
	fcb.Open()
	fexec := failsafe.With[*proxy.Response](fcb)
	run(b, "failsafe", rejected(func(ctx context.Context, req *proxy.Request) error {
		_, err := fexec.WithContext(ctx).Get(func() (*proxy.Response, error) { return backend.Process(ctx, req) })
		return err
	}, circuitbreaker.ErrOpen))

	kcb := newKitBreaker()
	for range breaker.DefaultConsecutiveFailures {
		_, _ = kcb.Execute(func() (any, error) { return nil, errBenchFail })
	}
	kit := kitbreaker.Gobreaker(kcb)(kitBackend)
	run(b, "gokit", rejected(func(ctx context.Context, req *proxy.Request) error {
		_, err := kit(ctx, req)
		return err
	}, gokitbreaker.ErrOpenState))
}
