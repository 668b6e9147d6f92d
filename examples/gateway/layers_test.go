package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/proxykit/proxy/audit"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRateLimit bursts past a user's bucket: 429 with Retry-After, in whole
// seconds rounded up, while another user still gets through.
func TestRateLimit(t *testing.T) {
	tg := startGateway(t, testServer+testAuth(true)+`
services:
  payment:
    roles: [guest, client]
    rate_limit: {rate: 0.01, burst: 2, key: user}
    instances: [{name: payment-1, demo: payment}]
  inventory:
    roles: [guest, client]
    rate_limit: {rate: 0.01, burst: 1, key: principal}
    instances: [{name: inventory-1, demo: inventory}]
`)
	pay := func(id, user string) answer {
		return tg.process(t, "payment", clientToken, `{"id":"`+id+`","user_id":"`+user+`","data":{"amount":1,"currency":"INR"}}`)
	}
	require.Equal(t, http.StatusOK, pay("a1", "alice").status)
	require.Equal(t, http.StatusOK, pay("a2", "alice").status)
	a := pay("a3", "alice")
	require.Equal(t, http.StatusTooManyRequests, a.status, "body %s", a.body)
	assert.Equal(t, "rate_limited", a.errorBody(t).Code)
	secs, err := strconv.Atoi(a.header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After = %q", a.header.Get("Retry-After"))
	assert.True(t, secs >= 99 && secs <= 100, "Retry-After = %d, want 100 (one token per 100s, rounded up)", secs)
	assert.Equal(t, http.StatusOK, pay("b1", "bob").status, "another user has a bucket of their own")

	// Keyed by principal: the envelope's user_id does not buy a new bucket.
	stock := func(user, token string) int {
		return tg.process(t, "inventory", token, `{"id":"s","user_id":"`+user+`","data":{"action":"stock","sku":"SKU-001"}}`).status
	}
	assert.Equal(t, http.StatusOK, stock("u1", clientToken))
	assert.Equal(t, http.StatusTooManyRequests, stock("u2", clientToken))
	assert.Equal(t, http.StatusOK, stock("u3", ""), "the anonymous principal has a bucket of its own")
}

// TestCache caches a service's reads only: a repeated get is answered from
// memory, marked cached, counted as a hit, and never reaches the instance;
// writes always do.
func TestCache(t *testing.T) {
	tg := startGateway(t, testServer+testAuth(true)+`
services:
  user:
    roles: [guest]
    cache: {size: 100, ttl: 1h, actions: [get]}
    instances: [{name: user-1, demo: user}]
`)
	create := tg.process(t, "user", "", `{"id":"c1","user_id":"u","data":{"action":"create","name":"Priya","email":"priya@example.com"}}`)
	require.Equal(t, http.StatusOK, create.status, "body %s", create.body)
	var created struct {
		Data userRecord `json:"data"`
	}
	require.NoError(t, json.Unmarshal(create.body, &created))
	inst := tg.current().services["user"].instances[0].demo
	callsBefore := inst.calls.Load()

	for i := range 3 {
		a := tg.process(t, "user", "", fmt.Sprintf(`{"id":"g%d","user_id":"u","data":{"action":"get","user_id":"%s"}}`, i, created.Data.UserID))
		require.Equal(t, http.StatusOK, a.status, "body %s", a.body)
		var resp struct {
			RequestID string     `json:"request_id"`
			Cached    bool       `json:"cached"`
			Data      userRecord `json:"data"`
		}
		require.NoError(t, json.Unmarshal(a.body, &resp))
		assert.Equal(t, fmt.Sprintf("g%d", i), resp.RequestID, "a hit answers with the caller's own request id")
		assert.Equal(t, i > 0, resp.Cached, "get %d cached", i)
		assert.Equal(t, created.Data, resp.Data)
	}
	assert.Equal(t, callsBefore+1, inst.calls.Load(), "three gets, one call")

	// A second create with the same data is a write: not cached.
	again := tg.process(t, "user", "", `{"id":"c2","user_id":"u","data":{"action":"create","name":"Priya","email":"priya@example.com"}}`)
	assert.Equal(t, http.StatusBadRequest, again.status, "the email is taken: %s", again.body)

	st := tg.do(t, http.MethodGet, "/api/v1/services/user/metrics", "", "")
	require.Equal(t, http.StatusOK, st.status)
	var m serviceStats
	require.NoError(t, json.Unmarshal(st.body, &m))
	assert.Equal(t, uint64(2), m.Calls.CacheHits)
	assert.Equal(t, uint64(5), m.Calls.Requests)
	prom := tg.do(t, http.MethodGet, "/metrics", "", "")
	assert.Contains(t, string(prom.body), `proxy_cache_hits_total{service="user"} 2`)
}

// TestStatsMatchPrometheus makes calls with several outcomes and checks that
// /api/v1/stats and /metrics report the same counts.
func TestStatsMatchPrometheus(t *testing.T) {
	tg := startGateway(t, testServer+testAuth(true)+`
services:
  payment:
    roles: [guest]
    rate_limit: {rate: 0.01, burst: 3, key: service}
    instances: [{name: payment-1, demo: payment}]
`)
	tg.process(t, "payment", "", payment("p1"))                                                     // ok
	tg.process(t, "payment", "", `{"id":"p2","user_id":"u","data":{"amount":-1,"currency":"INR"}}`) // invalid
	tg.process(t, "payment", "", payment("p3"))                                                     // ok
	tg.process(t, "payment", "", payment("p4"))                                                     // rate_limited
	tg.process(t, "payment", "", `{"id":"","user_id":"u","data":{}}`)                               // invalid, before the limiter

	st := tg.do(t, http.MethodGet, "/api/v1/stats", "", "")
	require.Equal(t, http.StatusOK, st.status)
	var snap statsSnapshot
	require.NoError(t, json.Unmarshal(st.body, &snap))
	got := snap.Services["payment"].Calls.Outcomes
	assert.Equal(t, uint64(2), got["ok"])
	assert.Equal(t, uint64(2), got["invalid"])
	assert.Equal(t, uint64(1), got["rate_limited"])

	prom := string(tg.do(t, http.MethodGet, "/metrics", "", "").body)
	for outcome, n := range got {
		line := fmt.Sprintf("proxy_requests_total{outcome=%q,service=\"payment\"} %d\n", outcome, n)
		assert.Contains(t, prom, line, "the Prometheus figure for %s", outcome)
	}
}

// TestAuditFile records every call that reaches the stack, refused ones
// included, in a hash-chained file that verifies after shutdown, keeps the
// chosen data fields with secrets masked, and never holds a token.
func TestAuditFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "audit.log")
	tg := startGateway(t, strings.Replace(testServer, "audit: {sink: off}", "audit: {sink: file, file: "+file+", fail_closed: true, fields: [amount, card], redact: [number]}", 1)+testAuth(true)+`
services:
  payment:
    roles: [guest, client]
    instances: [{name: payment-1, demo: payment}]
`)
	const canary = "CANARY-4242-SECRET"
	body := `{"id":"p1","user_id":"u","data":{"amount":5,"currency":"INR","description":"` + canary + `"}}`
	require.Equal(t, http.StatusOK, tg.process(t, "payment", clientToken, body).status)
	a := tg.do(t, http.MethodPost, "/api/v1/services/payment/process", clientToken,
		`{"id":"p2","user_id":"u","data":{"amount":5,"currency":"INR","card":{"number":"`+canary+`"}}}`)
	require.Equal(t, http.StatusBadRequest, a.status, "body %s", a.body)
	tg.stop()

	data, err := os.ReadFile(file)
	require.NoError(t, err)
	head, err := audit.Verify(bytes.NewReader(data))
	require.NoError(t, err, "audit.Verify")
	assert.Equal(t, uint64(2), head.Seq, "one record per call, the refused one included")
	assert.NotContains(t, string(data), canary, "neither unkept data nor redacted values reach the log")
	assert.NotContains(t, string(data), clientToken)
	assert.Contains(t, string(data), `"card":{"number":"[REDACTED]"}`)
	assert.Contains(t, string(data), `"principal":"alice"`)
	assert.Contains(t, string(data), `"outcome":"invalid"`)
}
