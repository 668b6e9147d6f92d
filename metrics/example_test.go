package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/metrics"
)

func Example() {
	reg := prometheus.NewRegistry() // the caller's registry, never the global one
	m := metrics.New(reg)

	calls := 0
	payments := proxy.ServiceFunc(func(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
		calls++
		if calls == 3 {
			return nil, &proxy.RateLimitError{Key: req.UserID}
		}
		return &proxy.Response{RequestID: req.ID, Cached: calls == 2}, nil
	})
	svc := proxy.Chain(payments, proxy.Instrumented(m))
	for _, id := range []string{"req_1", "req_2", "req_3"} {
		_, _ = svc.Process(context.Background(), &proxy.Request{ID: id, UserID: "alice", Service: "payment"})
	}
	m.SetBreakerState("payment", metrics.BreakerOpen) // from the breaker's state-change hook

	// Serve the exposition as /metrics would, and print its non-zero
	// counters and gauges.
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	lines := bufio.NewScanner(rec.Body)
	for lines.Scan() {
		line := lines.Text()
		if !strings.HasPrefix(line, "#") && !strings.Contains(line, "duration") && !strings.HasSuffix(line, " 0") {
			fmt.Println(line)
		}
	}
	// Output:
	// proxy_breaker_state{service="payment"} 2
	// proxy_cache_hits_total{service="payment"} 1
	// proxy_cache_misses_total{service="payment"} 1
	// proxy_requests_total{outcome="ok",service="payment"} 2
	// proxy_requests_total{outcome="rate_limited",service="payment"} 1
}
