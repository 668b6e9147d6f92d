package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startBackGateway serves a second gateway, with one inventory instance,
// from an httptest server: the remote backend of the front gateway.
func startBackGateway(t *testing.T) *httptest.Server {
	t.Helper()
	cfg, err := loadConfig([]byte(testServer+testAuth(true)+`
services:
  inventory:
    roles: [guest]
    instances:
      - {name: back-inventory-1, demo: inventory}
`), "back.yaml")
	require.NoError(t, err)
	back, err := newGateway(cfg, newLogger(t.Output(), "debug"))
	require.NoError(t, err)
	srv := httptest.NewServer(back.handler)
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, back.closeAll())
	})
	return srv
}

// rawBackend answers by path: /429 rate limited with Retry-After: 7, /500
// an internal error, /garbage a 200 that is not JSON, /echo the envelope
// with the deadline header it was sent.
type rawBackend struct {
	timeoutSeen atomic.Int64
}

func (b *rawBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/429":
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
	case "/500":
		http.Error(w, "database on fire", http.StatusInternalServerError)
	case "/garbage":
		_, _ = w.Write([]byte("<html>hello</html>"))
	case "/echo":
		ms, _ := strconv.ParseInt(r.Header.Get(timeoutHeader), 10, 64)
		b.timeoutSeen.Store(ms)
		var env envelope
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"request_id": env.ID, "data": map[string]any{"echo": env.Data}})
	default:
		http.NotFound(w, r)
	}
}

func TestRemoteInstance(t *testing.T) {
	back := startBackGateway(t)
	raw := &rawBackend{}
	rawSrv := httptest.NewServer(raw)
	t.Cleanup(rawSrv.Close)

	remote := func(name, url string) string {
		return "  " + name + ":\n    roles: [guest]\n    instances:\n      - {name: " + name + "-1, url: " + url + "}\n"
	}
	tg := startGateway(t, testServer+testAuth(true)+`
services:
  stock:
    roles: [guest]
    health_check: {interval: 20ms, timeout: 10ms, unhealthy_after: 1, healthy_after: 1}
    instances:
      - {name: stock-remote, url: `+back.URL+`/api/v1/services/inventory/process, health_url: `+back.URL+`/healthz}
`+remote("limited", rawSrv.URL+"/429")+remote("failing", rawSrv.URL+"/500")+
		remote("garbage", rawSrv.URL+"/garbage")+remote("echo", rawSrv.URL+"/echo"))

	t.Run("answers through the remote gateway", func(t *testing.T) {
		a := tg.process(t, "stock", "", `{"id":"q1","user_id":"u","data":{"action":"reserve","sku":"SKU-001","quantity":3}}`)
		require.Equal(t, http.StatusOK, a.status, "body %s", a.body)
		var resp struct {
			RequestID string `json:"request_id"`
			Service   string `json:"service"`
			Instance  string `json:"instance"`
			Data      struct {
				Available int `json:"available"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(a.body, &resp))
		assert.Equal(t, "q1", resp.RequestID)
		assert.Equal(t, "stock", resp.Service, "the front gateway's name for the service")
		assert.Equal(t, "back-inventory-1", resp.Instance, "the instance the remote says answered")
		assert.Equal(t, demoStock["SKU-001"]-3, resp.Data.Available)
	})
	t.Run("remote invalid request is 400 with its field", func(t *testing.T) {
		a := tg.process(t, "stock", "", `{"id":"q2","user_id":"u","data":{"action":"reserve","sku":"SKU-001","quantity":100000}}`)
		require.Equal(t, http.StatusBadRequest, a.status, "body %s", a.body)
		e := a.errorBody(t)
		assert.Equal(t, "data.quantity", e.Field)
		assert.Contains(t, e.Message, "in stock")
	})
	t.Run("remote rate limit is 429 with its Retry-After", func(t *testing.T) {
		a := tg.process(t, "limited", "", payment("l1"))
		require.Equal(t, http.StatusTooManyRequests, a.status, "body %s", a.body)
		assert.Equal(t, "7", a.header.Get("Retry-After"))
	})
	t.Run("remote failure is 502 without its detail", func(t *testing.T) {
		a := tg.process(t, "failing", "", payment("f1"))
		require.Equal(t, http.StatusBadGateway, a.status, "body %s", a.body)
		assert.NotContains(t, string(a.body), "database", "backend detail stays in the log")
	})
	t.Run("answer that is not JSON is 502", func(t *testing.T) {
		a := tg.process(t, "garbage", "", payment("g1"))
		assert.Equal(t, http.StatusBadGateway, a.status, "body %s", a.body)
	})
	t.Run("deadline is propagated", func(t *testing.T) {
		a := tg.do(t, http.MethodPost, "/api/v1/services/echo/process", "", `{"id":"e1","user_id":"u","data":{"x":1}}`, timeoutHeader, "30000")
		require.Equal(t, http.StatusOK, a.status, "body %s", a.body)
		got := raw.timeoutSeen.Load()
		assert.True(t, got > 0 && got <= 30000, "remote saw %s = %d, want 1..30000", timeoutHeader, got)
		assert.True(t, strings.Contains(string(a.body), `"echo":{"x":1}`), "body %s", a.body)
	})
	t.Run("health checks reach the remote", func(t *testing.T) {
		waitInstance(t, tg.current().services["stock"], "stock-remote", func(st instanceStatus) bool { return st.Healthy })
		back.Close() // the remote goes away: its health check fails
		waitInstance(t, tg.current().services["stock"], "stock-remote", func(st instanceStatus) bool { return st.State == "down" })
		a := tg.process(t, "stock", "", `{"id":"q3","user_id":"u","data":{"action":"stock","sku":"SKU-001"}}`)
		assert.Equal(t, http.StatusServiceUnavailable, a.status, "body %s", a.body)
	})
}

// TestTracing continues a caller's trace through the stack into a remote
// instance, and logs the span.
func TestTracing(t *testing.T) {
	var seen atomic.Value
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Get("Traceparent"))
		_, _ = w.Write([]byte(`{"data":{"ok":true}}`))
	}))
	t.Cleanup(backend.Close)
	logs := &syncBuffer{}
	cfg, err := loadConfig([]byte(testServer+testAuth(true)+`
tracing: {exporter: log, sample_ratio: 0}
services:
  echo:
    roles: [guest]
    instances: [{name: echo-1, url: `+backend.URL+`}]
`), "t.yaml")
	require.NoError(t, err)
	g, err := newGateway(cfg, newLogger(logs, "info"))
	require.NoError(t, err)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/api/v1/services/echo/process",
		strings.NewReader(`{"id":"t1","user_id":"u","data":{}}`))
	req.Header.Set("Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	rec := httptest.NewRecorder()
	g.handler.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, "body %s", rec.Body)
	require.NoError(t, g.closeAll()) // flushes the spans

	got, _ := seen.Load().(string)
	assert.Contains(t, got, traceID, "the remote instance continues the caller's trace (a sampled caller is always followed)")
	assert.NotContains(t, got, "00f067aa0ba902b7", "with a span of the gateway's as its parent")
	assert.Contains(t, logs.String(), `"msg":"span","log":"trace","trace_id":"`+traceID+`"`)
}
