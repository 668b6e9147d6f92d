package bench_test

import (
	"context"
	"sync"
	"testing"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/ratelimiter"
	kitratelimit "github.com/go-kit/kit/ratelimit"
	"golang.org/x/time/rate"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/ratelimit"
)

// The limiters admit every call (a rate no benchmark reaches), so that the
// benchmarks measure the success path.
const (
	benchRate  = rate.Limit(1e12)
	benchBurst = 1 << 30
)

// BenchmarkRateLimit measures a rate limiter admitting a call, in two
// jobs. variant=peruser: ours and the bare baseline keep a token bucket per
// user, over benchUsers users, and look the caller's up. variant=onekey:
// one bucket for all calls, the only kind the peers have, so that they are
// compared on the same job; ours keys every call by its service, which all
// the benchmark's requests share.
func BenchmarkRateLimit(b *testing.B) {
	b.Run("variant=peruser", func(b *testing.B) {
		ours := viaService(proxy.Chain(backend, proxy.Limited(ratelimit.New(benchRate, benchBurst), proxy.KeyByUser)))
		warm(b, ours)
		run(b, "ours", ours)

		// The bare mechanism: a per-key lookup of an x/time/rate limiter
		// and Allow, with no bound on the keys and no eviction.
		var buckets sync.Map
		bare := func(ctx context.Context, req *proxy.Request) bool {
			l, ok := buckets.Load(req.UserID)
			if !ok {
				l, _ = buckets.LoadOrStore(req.UserID, rate.NewLimiter(benchRate, benchBurst))
			}
			if !l.(*rate.Limiter).Allow() {
				return false
			}
			resp, err := backend.Process(ctx, req)
			return err == nil && resp != nil
		}
		warm(b, bare)
		run(b, "bare", bare)
	})
	b.Run("variant=onekey", func(b *testing.B) {
		run(b, "ours", viaService(proxy.Chain(backend, proxy.Limited(ratelimit.New(benchRate, benchBurst), proxy.KeyByService))))

		one := rate.NewLimiter(benchRate, benchBurst)
		run(b, "bare", func(ctx context.Context, req *proxy.Request) bool {
			if !one.Allow() {
				return false
			}
			resp, err := backend.Process(ctx, req)
			return err == nil && resp != nil
		})

		run(b, "failsafe", viaFailsafe(failsafe.With[*proxy.Response](
			ratelimiter.NewBursty[*proxy.Response](1<<40, 1e9))))
		run(b, "gokit", viaEndpoint(kitratelimit.NewErroringLimiter(rate.NewLimiter(benchRate, benchBurst))(kitBackend)))
	})
}
