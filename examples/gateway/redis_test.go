package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxykit/proxy/internal/redistest"
)

// TestRedisSharedByTwoGateways runs two gateways, as main does, against one
// real Redis server: a burst spread over both is limited by one shared
// bucket, and a response one gateway cached is a hit on the other.
func TestRedisSharedByTwoGateways(t *testing.T) {
	srv := redistest.Start(t)
	var backendCalls atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		backendCalls.Add(1)
		var env envelope
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"request_id": env.ID, "data": map[string]any{"echo": env.Data}})
	}))
	t.Cleanup(backend.Close)
	const burst = 10
	yml := testServer + testAuth(true) + `
redis: {address: ` + srv.Addr() + `, timeout: 2s}
services:
  payment:
    roles: [guest]
    # one token per 1000s: only the burst is admitted while the test runs
    rate_limit: {store: redis, rate: 0.001, burst: ` + fmt.Sprint(burst) + `, key: service, replicas: 2}
    instances: [{name: payment-1, demo: payment}]
  catalog:
    roles: [guest]
    cache: {store: redis, ttl: 1m}
    instances: [{name: catalog-1, url: ` + backend.URL + `}]
`
	gws := []*testGateway{runGateway(t, yml), runGateway(t, yml)}

	t.Run("one rate limit for both", func(t *testing.T) {
		const perGateway = 15
		var ok, limited, other atomic.Int64
		var wg sync.WaitGroup
		for i, tg := range gws {
			for j := range perGateway {
				wg.Go(func() {
					a := tg.process(t, "payment", "", payment(fmt.Sprintf("g%d-%d", i, j)))
					switch a.status {
					case http.StatusOK:
						ok.Add(1)
					case http.StatusTooManyRequests:
						limited.Add(1)
						assert.NotEmpty(t, a.header.Get("Retry-After"), "a 429 says when to retry")
					default:
						other.Add(1)
						t.Errorf("process = %d %s, want 200 or 429", a.status, a.body)
					}
				})
			}
		}
		wg.Wait()
		// Each gateway alone would admit its whole burst; together they
		// admit one burst.
		assert.Equal(t, int64(burst), ok.Load(), "calls admitted by the two gateways together")
		assert.Equal(t, int64(2*perGateway-burst), limited.Load(), "calls refused with 429")
		for i, tg := range gws {
			a := tg.process(t, "payment", "", payment(fmt.Sprintf("after-%d", i)))
			assert.Equal(t, http.StatusTooManyRequests, a.status, "gateway %d after the shared burst: %s", i, a.body)
		}
	})

	t.Run("a response cached by one is a hit on the other", func(t *testing.T) {
		type reply struct {
			RequestID string `json:"request_id"`
			Cached    bool   `json:"cached"`
			Data      struct {
				Echo map[string]string `json:"echo"`
			} `json:"data"`
		}
		read := func(a answer) reply {
			t.Helper()
			require.Equal(t, http.StatusOK, a.status, "body %s", a.body)
			var r reply
			require.NoError(t, json.Unmarshal(a.body, &r), "body %s", a.body)
			return r
		}
		first := read(gws[0].process(t, "catalog", "", `{"id":"c1","user_id":"u","data":{"sku":"SKU-001"}}`))
		assert.False(t, first.Cached, "the first call reaches the backend")
		require.Equal(t, int64(1), backendCalls.Load(), "backend calls after the first")

		second := read(gws[1].process(t, "catalog", "", `{"id":"c2","user_id":"u","data":{"sku":"SKU-001"}}`))
		assert.True(t, second.Cached, "the other gateway answers from Redis")
		assert.Equal(t, "c2", second.RequestID, "with the caller's own request id")
		assert.Equal(t, "SKU-001", second.Data.Echo["sku"])
		assert.Equal(t, int64(1), backendCalls.Load(), "backend calls after the hit on the other gateway")

		prom := string(gws[1].do(t, http.MethodGet, "/metrics", "", "").body)
		assert.Contains(t, prom, `gateway_redis_cache_hits_total{service="catalog"} 1`)
		assert.Contains(t, prom, `gateway_redis_ratelimit_errors_total{service="payment"} 0`)
		var st serviceStats
		require.NoError(t, json.Unmarshal(gws[1].do(t, http.MethodGet, "/api/v1/services/catalog/metrics", "", "").body, &st))
		require.NotNil(t, st.Redis, "the service's stats have a redis section")
		require.NotNil(t, st.Redis.Cache)
		assert.Equal(t, uint64(1), st.Redis.Cache.Hits)
	})
}

// TestRedisFailureModes stops Redis under a gateway: a fail-open limit goes
// on with a local limiter, a fail-closed one refuses with 429, a shared
// cache misses instead of failing; when Redis is back, so is the shared
// limit.
func TestRedisFailureModes(t *testing.T) {
	srv := redistest.Start(t)
	tg := startGateway(t, testServer+testAuth(true)+`
redis: {address: `+srv.Addr()+`, timeout: 2s, retry_interval: 1ms}
services:
  open:
    roles: [guest]
    rate_limit: {store: redis, failure_mode: open, rate: 0.001, burst: 1, key: service}
    instances: [{name: open-1, demo: payment}]
  closed:
    roles: [guest]
    rate_limit: {store: redis, failure_mode: closed, rate: 0.001, burst: 1, key: service}
    instances: [{name: closed-1, demo: payment}]
  cached:
    roles: [guest]
    cache: {store: redis, ttl: 1m}
    instances: [{name: cached-1, demo: payment}]
`)
	n := 0
	call := func(service string) int {
		n++
		return tg.process(t, service, "", payment(fmt.Sprintf("p%d", n))).status
	}
	for _, s := range []string{"open", "closed"} {
		require.Equal(t, http.StatusOK, call(s), "%s: the first call spends the shared burst", s)
		require.Equal(t, http.StatusTooManyRequests, call(s), "%s: the second is over the shared limit", s)
	}

	srv.Stop()
	assert.Equal(t, http.StatusOK, call("open"), "fail-open: a fresh local bucket admits while Redis is down")
	assert.Equal(t, http.StatusTooManyRequests, call("closed"), "fail-closed: refused while Redis is down")
	assert.Equal(t, http.StatusOK, call("cached"), "a Redis cache that cannot be reached is a miss, not a failure")
	prom := string(tg.do(t, http.MethodGet, "/metrics", "", "").body)
	assert.Contains(t, prom, `gateway_redis_ratelimit_healthy{service="closed"} 0`)
	assert.Regexp(t, `gateway_redis_ratelimit_fallbacks_total\{service="closed"\} [1-9]`, prom)
	assert.Regexp(t, `gateway_redis_cache_errors_total\{service="cached"\} [1-9]`, prom)

	srv.Restart() // empty: every bucket is full again
	assert.Equal(t, http.StatusOK, call("closed"), "Redis is back: its bucket admits the burst")
	assert.Equal(t, http.StatusTooManyRequests, call("closed"), "and the shared limit is in force again")
	prom = string(tg.do(t, http.MethodGet, "/metrics", "", "").body)
	assert.Contains(t, prom, `gateway_redis_ratelimit_healthy{service="closed"} 1`)
}
