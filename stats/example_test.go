package stats_test

import (
	"context"
	"fmt"
	"time"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/stats"
)

// manualClock is a clock that moves only when told to, so that the example's
// output does not depend on the machine.
type manualClock struct{ now time.Time }

func (c *manualClock) Now() time.Time { return c.now }

func Example() {
	clk := &manualClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	rec := stats.New(stats.WithClock(clk))

	// A service that takes 1ms for the first call, 2ms for the second, and
	// so on, and answers every fourth call from its cache.
	calls := 0
	payments := proxy.ServiceFunc(func(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
		calls++
		clk.now = clk.now.Add(time.Duration(calls) * time.Millisecond)
		return &proxy.Response{RequestID: req.ID, Cached: calls%4 == 0}, nil
	})
	svc := proxy.Chain(payments, proxy.Instrumented(rec, proxy.WithInstrumentedClock(clk)))
	for range 100 {
		_, _ = svc.Process(context.Background(), &proxy.Request{ID: "req", UserID: "alice", Service: "payment"})
	}

	snap := rec.Snapshot()
	st, _ := snap.Service("payment")
	fmt.Println("requests:", st.Requests, "ok:", st.Outcomes["ok"], "cache hits:", st.CacheHits)
	fmt.Printf("rate: %.1f/s\n", st.Rate) // 100 calls in 5.05s
	// The quantiles are within 3.125% of the exact 50ms, 90ms and 99ms.
	fmt.Println("p50:", st.Latency.P50, "p90:", st.Latency.P90, "p99:", st.Latency.P99)
	fmt.Println("mean:", st.Latency.Mean, "max:", st.Latency.Max)
	// Output:
	// requests: 100 ok: 100 cache hits: 25
	// rate: 19.8/s
	// p50: 49.283072ms p90: 90.177536ms p99: 98.566144ms
	// mean: 50.5ms max: 100ms
}
