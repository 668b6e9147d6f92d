package bench_test

import (
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	fsbulkhead "github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/ratelimiter"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"
	kitbreaker "github.com/go-kit/kit/circuitbreaker"
	"github.com/go-kit/kit/endpoint"
	kitratelimit "github.com/go-kit/kit/ratelimit"
	"github.com/go-kit/kit/sd"
	"github.com/go-kit/kit/sd/lb"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/balance"
	"github.com/proxykit/proxy/breaker"
	"github.com/proxykit/proxy/metrics"
	"github.com/proxykit/proxy/ratelimit"
	"github.com/proxykit/proxy/retry"
)

// ourStack returns the composed stack, outermost first: Instrumented
// (Prometheus), Limited (per user), Retrying, Breaker, Timeout (when
// withTimeout) and Balanced (five instances, round robin).
func ourStack(withTimeout bool) proxy.Service {
	mw := []proxy.Middleware{
		proxy.Instrumented(metrics.New(prometheus.NewRegistry())),
		proxy.Limited(ratelimit.New(benchRate, benchBurst), proxy.KeyByUser),
		proxy.Retrying(retry.New()),
		proxy.Breaker(breaker.New()),
	}
	if withTimeout {
		mw = append(mw, proxy.Timeout(time.Second))
	}
	return proxy.Chain(proxy.Balanced(newPool(balance.NewRoundRobin())), mw...)
}

// BenchmarkStack measures a composed stack around a call that succeeds:
// ours with and without its Timeout; failsafe-go's composition of five
// policies (rate limiter, retry policy, circuit breaker, bulkhead and
// timeout, outermost first); go-kit's chain of rate limiter, breaker and
// lb.Retry over a round robin of five endpoints (lb.Retry has a timeout of
// its own).
func BenchmarkStack(b *testing.B) {
	b.Run("variant=timeout", func(b *testing.B) {
		ours := viaService(ourStack(true))
		warm(b, ours)
		run(b, "ours", ours)

		run(b, "failsafe", viaFailsafeExec(failsafe.With[*proxy.Response](
			ratelimiter.NewBursty[*proxy.Response](1<<40, time.Second),
			retrypolicy.NewWithDefaults[*proxy.Response](),
			newFailsafeBreaker(),
			fsbulkhead.New[*proxy.Response](1000),
			timeout.New[*proxy.Response](time.Second),
		)))

		eps := make(sd.FixedEndpointer, benchInstances)
		for i := range eps {
			eps[i] = kitBackend
		}
		kit := endpoint.Chain(
			kitratelimit.NewErroringLimiter(rate.NewLimiter(benchRate, benchBurst)),
			kitbreaker.Gobreaker(newKitBreaker()),
		)(lb.Retry(retry.DefaultMaxAttempts, time.Second, lb.NewRoundRobin(eps)))
		run(b, "gokit", viaEndpoint(kit))
	})
	b.Run("variant=notimeout", func(b *testing.B) {
		ours := viaService(ourStack(false))
		warm(b, ours)
		run(b, "ours", ours)
	})
}
