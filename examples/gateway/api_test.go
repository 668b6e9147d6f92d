package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// apiServices are the services of the API tests: a healthy payment
// service, one whose only instance always fails, one whose only instance is
// down, and one for admins only.
const apiServices = `
services:
  payment:
    roles: [guest, client, admin]
    retry: {attempts: 2, initial_backoff: 1ms, max_backoff: 1ms}
    instances:
      - {name: payment-1, demo: payment}
      - {name: payment-2, demo: payment}
  broken:
    roles: [guest, client, admin]
    retry: {attempts: 3, initial_backoff: 1ms, max_backoff: 1ms}
    instances:
      - {name: broken-1, demo: order, error_rate: 1}
  dead:
    roles: [guest, client, admin]
    health_check: {interval: 10ms, timeout: 5ms, unhealthy_after: 1, healthy_after: 1}
    instances:
      - {name: dead-1, demo: user, down: true}
  slow:
    roles: [guest, client, admin]
    timeout: 50ms
    instances:
      - {name: slow-1, demo: inventory, latency: 1m}
  vault:
    roles: [admin]
    instances:
      - {name: vault-1, demo: inventory}
`

func TestRoutes(t *testing.T) {
	tg := startGateway(t, testServer+testAuth(true)+apiServices)

	t.Run("process", func(t *testing.T) {
		a := tg.process(t, "payment-service", "", payment("req_123"))
		require.Equal(t, http.StatusOK, a.status, "body %s", a.body)
		var resp struct {
			RequestID string `json:"request_id"`
			Service   string `json:"service"`
			Instance  string `json:"instance"`
			Data      struct {
				PaymentID string `json:"payment_id"`
				Status    string `json:"status"`
				Amount    string `json:"amount"`
				Currency  string `json:"currency"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(a.body, &resp))
		assert.Equal(t, "req_123", resp.RequestID)
		assert.Equal(t, "payment", resp.Service)
		assert.Contains(t, []string{"payment-1", "payment-2"}, resp.Instance)
		assert.Equal(t, "captured", resp.Data.Status)
		assert.Equal(t, "100.50", resp.Data.Amount)
		assert.Equal(t, "INR", resp.Data.Currency)
		assert.NotEmpty(t, a.header.Get(requestIDHeader), "X-Request-ID")

		// The same request id again is the same payment, whichever
		// instance answers.
		again := tg.process(t, "payment", "", payment("req_123"))
		require.Equal(t, http.StatusOK, again.status)
		assert.Contains(t, string(again.body), resp.Data.PaymentID)
	})
	t.Run("service health", func(t *testing.T) {
		a := tg.do(t, http.MethodGet, "/api/v1/services/payment/health", clientToken, "")
		require.Equal(t, http.StatusOK, a.status, "body %s", a.body)
		var h serviceHealth
		require.NoError(t, json.Unmarshal(a.body, &h))
		assert.Equal(t, "up", h.Status)
		assert.Equal(t, 2, h.HealthyInstances)
		require.Len(t, h.Instances, 2)
		assert.Equal(t, "payment-1", h.Instances[0].Name)
	})
	t.Run("service metrics", func(t *testing.T) {
		a := tg.do(t, http.MethodGet, "/api/v1/services/payment-service/metrics", clientToken, "")
		require.Equal(t, http.StatusOK, a.status, "body %s", a.body)
		assert.True(t, isJSON(a.body))
	})
	t.Run("stats", func(t *testing.T) {
		// Each caller sees the services its role may use, as on the
		// per-service routes: vault is for admins only.
		for _, tc := range []struct {
			token     string
			wantVault bool
		}{{clientToken, false}, {"", false}, {adminToken, true}} {
			a := tg.do(t, http.MethodGet, "/api/v1/stats", tc.token, "")
			require.Equal(t, http.StatusOK, a.status, "body %s", a.body)
			var snap statsSnapshot
			require.NoError(t, json.Unmarshal(a.body, &snap))
			assert.Contains(t, snap.Services, "payment", "stats with token %q", tc.token)
			_, vault := snap.Services["vault"]
			assert.Equal(t, tc.wantVault, vault, "stats with token %q show vault", tc.token)
		}
		a := tg.do(t, http.MethodGet, "/api/v1/services/vault/metrics", clientToken, "")
		assert.Equal(t, http.StatusForbidden, a.status, "vault's metrics for a client")
	})
	t.Run("metrics", func(t *testing.T) {
		a := tg.do(t, http.MethodGet, "/metrics", "", "")
		require.Equal(t, http.StatusOK, a.status)
		for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "gateway_http_requests_total"} {
			assert.Contains(t, string(a.body), name)
		}
	})
	t.Run("health", func(t *testing.T) {
		// dead has no healthy instance, so the whole is 503.
		waitInstance(t, tg.current().services["dead"], "dead-1", func(st instanceStatus) bool { return st.State == "down" })
		a := tg.do(t, http.MethodGet, "/health", "", "")
		require.Equal(t, http.StatusServiceUnavailable, a.status, "body %s", a.body)
		var h struct {
			Status   string          `json:"status"`
			Services []serviceHealth `json:"services"`
		}
		require.NoError(t, json.Unmarshal(a.body, &h))
		assert.Equal(t, "unavailable", h.Status)
		got := map[string]string{}
		for _, s := range h.Services {
			got[s.Service] = s.Status
		}
		assert.Equal(t, map[string]string{"payment": "up", "broken": "up", "dead": "down", "slow": "up", "vault": "up"}, got)
	})
	t.Run("healthz", func(t *testing.T) {
		a := tg.do(t, http.MethodGet, "/healthz", "", "")
		assert.Equal(t, http.StatusOK, a.status)
	})
	t.Run("readyz", func(t *testing.T) {
		a := tg.do(t, http.MethodGet, "/readyz", "", "")
		assert.Equal(t, http.StatusOK, a.status)
	})
	t.Run("ws", func(t *testing.T) {
		c := tg.dialStream(t, clientToken)
		data := waitEvent(t, c, "stats", func(json.RawMessage) bool { return true })
		assert.Contains(t, string(data), `"payment"`)
	})
}

// TestStatusCodes produces every status of the route table from a real
// cause.
func TestStatusCodes(t *testing.T) {
	open := startGateway(t, testServer+testAuth(true)+apiServices)
	locked := startGateway(t, testServer+testAuth(false)+apiServices)
	waitInstance(t, open.current().services["dead"], "dead-1", func(st instanceStatus) bool { return st.State == "down" })

	big := `{"id":"r","user_id":"u","data":{"blob":"` + strings.Repeat("x", 5000) + `"}}`
	deep := `{"id":"r","user_id":"u","data":` + strings.Repeat(`{"a":`, 10) + `1` + strings.Repeat(`}`, 10) + `}`
	for _, tc := range []struct {
		name       string
		gw         *testGateway
		method     string
		path       string
		token      string
		body       string
		header     []string
		wantStatus int
		wantCode   string
		wantField  string
	}{
		{name: "unknown service", gw: open, path: "/api/v1/services/nope/process", body: payment("r"), wantStatus: 404, wantCode: codeUnknownService},
		{name: "unknown route", gw: open, method: "GET", path: "/api/v2/nothing", wantStatus: 404, wantCode: codeNotFound},
		{name: "wrong method", gw: open, method: "GET", path: "/api/v1/services/payment/process", wantStatus: 405, wantCode: codeMethodNotAllowed},
		{name: "wrong method on health", gw: open, method: "POST", path: "/health", body: "{}", wantStatus: 405, wantCode: codeMethodNotAllowed},
		{name: "body too large", gw: open, body: big, wantStatus: 413, wantCode: codeBodyTooLarge},
		{name: "not JSON", gw: open, body: `id=1`, wantStatus: 400, wantCode: "invalid"},
		{name: "wrong content type", gw: open, body: payment("r"), header: []string{"Content-Type", "text/plain"}, wantStatus: 415, wantCode: codeUnsupportedMedia},
		{name: "unknown field", gw: open, body: `{"id":"r","user_id":"u","data":{},"admin":true}`, wantStatus: 400, wantCode: "invalid"},
		{name: "trailing data", gw: open, body: payment("r") + `{}`, wantStatus: 400, wantCode: "invalid"},
		{name: "wrong type", gw: open, body: `{"id":7,"user_id":"u","data":{}}`, wantStatus: 400, wantCode: "invalid", wantField: "id"},
		{name: "too deep", gw: open, body: deep, wantStatus: 400, wantCode: "invalid"},
		{name: "duplicate key", gw: open, body: `{"id":"r","id":"s","user_id":"u","data":{}}`, wantStatus: 400, wantCode: "invalid"},
		{name: "empty body", gw: open, body: "", wantStatus: 400, wantCode: "invalid"},
		{name: "no user id", gw: open, body: `{"id":"r","data":{"amount":1,"currency":"INR"}}`, wantStatus: 400, wantCode: "invalid", wantField: "user_id"},
		{name: "control character in data", gw: open, body: `{"id":"r","user_id":"u","data":{"amount":1,"currency":"IN\u0000R"}}`, wantStatus: 400, wantCode: "invalid"},
		{name: "not an object", gw: open, body: `[1,2]`, wantStatus: 400, wantCode: "invalid"},
		{name: "invalid amount", gw: open, body: `{"id":"r1","user_id":"u","data":{"amount":-5,"currency":"INR"}}`, wantStatus: 400, wantCode: "invalid", wantField: "data.amount"},
		{name: "unknown currency", gw: open, body: `{"id":"r2","user_id":"u","data":{"amount":5,"currency":"XYZ"}}`, wantStatus: 400, wantCode: "invalid", wantField: "data.currency"},
		{name: "no token", gw: locked, body: payment("r"), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "bad token", gw: open, token: "not-a-token", body: payment("r"), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "not bearer", gw: open, header: []string{"Authorization", "Basic YTpi"}, body: payment("r"), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "role not allowed", gw: open, token: outsiderToken, body: payment("r"), wantStatus: 403, wantCode: "forbidden"},
		{name: "client on admin service", gw: open, path: "/api/v1/services/vault/process", token: clientToken, body: `{"id":"r","user_id":"u","data":{"action":"stock","sku":"SKU-001"}}`, wantStatus: 403, wantCode: "forbidden"},
		{name: "anonymous on admin service", gw: open, path: "/api/v1/services/vault/process", body: `{"id":"r","user_id":"u","data":{"action":"stock","sku":"SKU-001"}}`, wantStatus: 403, wantCode: "forbidden"},
		{name: "stats without token", gw: locked, method: "GET", path: "/api/v1/stats", wantStatus: 401, wantCode: "unauthenticated"},
		{name: "backend failed", gw: open, path: "/api/v1/services/broken/process", body: `{"id":"o1","user_id":"u","data":{"action":"get","order_id":"x"}}`, wantStatus: 502, wantCode: codeBackendError},
		{name: "no healthy instance", gw: open, path: "/api/v1/services/dead/process", body: `{"id":"d1","user_id":"u","data":{"action":"get","user_id":"x"}}`, wantStatus: 503, wantCode: "no_healthy_instance"},
		{name: "slow instance", gw: open, path: "/api/v1/services/slow/process", body: `{"id":"s0","user_id":"u","data":{"action":"stock","sku":"SKU-001"}}`, wantStatus: 504, wantCode: "timeout"},
		{name: "caller deadline on a slow instance", gw: open, path: "/api/v1/services/slow/process", header: []string{timeoutHeader, "20"}, body: `{"id":"s1","user_id":"u","data":{"action":"stock","sku":"SKU-001"}}`, wantStatus: 504, wantCode: "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method, path := tc.method, tc.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/api/v1/services/payment/process"
			}
			req, err := http.NewRequestWithContext(t.Context(), method, tc.gw.url+path, strings.NewReader(tc.body))
			require.NoError(t, err)
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			for i := 0; i+1 < len(tc.header); i += 2 {
				req.Header.Set(tc.header[i], tc.header[i+1])
			}
			resp, err := tc.gw.client.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var body struct {
				Error apiError `json:"error"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body), "the answer is the JSON error object")
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("%s %s = %d %+v, want %d", method, path, resp.StatusCode, body.Error, tc.wantStatus)
			}
			assert.Equal(t, tc.wantCode, body.Error.Code, "error code")
			assert.NotEmpty(t, body.Error.Message, "error message")
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			if tc.wantField != "" {
				assert.Equal(t, tc.wantField, body.Error.Field, "field")
			}
			switch resp.StatusCode {
			case http.StatusUnauthorized:
				assert.True(t, strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer realm="), "WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
				if tc.token != "" {
					assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
				}
			case http.StatusMethodNotAllowed:
				assert.NotEmpty(t, resp.Header.Get("Allow"), "Allow")
			}
		})
	}
}

// TestSlowClientsAreCut checks the server's timeouts: a client that never
// finishes its headers is disconnected, and one that never finishes its
// body gets a 400 and is disconnected, instead of holding a connection
// and a handler for ever.
func TestSlowClientsAreCut(t *testing.T) {
	tg := startGateway(t, strings.Replace(testServer, "  addr: 127.0.0.1:0\n",
		"  addr: 127.0.0.1:0\n  read_header_timeout: 50ms\n  read_timeout: 200ms\n", 1)+testAuth(true)+apiServices)
	for _, tc := range []struct {
		name, sent, want string
	}{
		{"headers", "GET /health HTTP/1.1\r\nHost: gw\r\n", ""},
		{"body", "POST /api/v1/services/payment/process HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":", "HTTP/1.1 400 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(tg.url, "http://"))
			require.NoError(t, err)
			defer conn.Close()
			_, err = conn.Write([]byte(tc.sent))
			require.NoError(t, err)
			// Without the timeouts, the gateway would wait for the rest
			// until this deadline ends the read with an error.
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
			got, err := io.ReadAll(conn)
			require.NoError(t, err, "the gateway closes the connection; it answered %q", got)
			assert.True(t, strings.HasPrefix(string(got), tc.want), "answer %q, want it to start with %q", got, tc.want)
		})
	}
}

func TestRequestID(t *testing.T) {
	tg := startGateway(t, testServer+testAuth(true)+apiServices)
	a := tg.do(t, http.MethodGet, "/healthz", "", "", requestIDHeader, "trace-abc.123")
	assert.Equal(t, "trace-abc.123", a.header.Get(requestIDHeader), "a safe id is echoed")
	a = tg.do(t, http.MethodGet, "/healthz", "", "", requestIDHeader, "bad id\twith spaces")
	got := a.header.Get(requestIDHeader)
	assert.NotEqual(t, "bad id\twith spaces", got)
	assert.Regexp(t, safeID, got, "an unsafe id is replaced by a fresh one")
}

// TestLongMethod sends a method of 30,000 letters, which net/http accepts:
// the 405 answer and the access log line repeat only its start.
func TestLongMethod(t *testing.T) {
	logs := &syncBuffer{}
	tg := startGatewayLogging(t, testServer+testAuth(true)+apiServices, logs)
	method := strings.Repeat("A", 30000)
	a := tg.do(t, method, "/health", "", "")
	require.Equal(t, http.StatusMethodNotAllowed, a.status)
	assert.Less(t, len(a.body), 200, "405 answer %.100s...", a.body)
	assert.False(t, strings.Contains(logs.String(), method[:100]), "the access log line repeats the whole method")
}

func TestCORS(t *testing.T) {
	tg := startGateway(t, testServer+testAuth(true)+apiServices)
	a := tg.do(t, http.MethodOptions, "/api/v1/services/payment/process", "", "",
		"Origin", "https://app.example.com", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization, content-type")
	assert.Equal(t, http.StatusNoContent, a.status)
	assert.Equal(t, "https://app.example.com", a.header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, a.header.Get("Access-Control-Allow-Headers"), "Authorization")

	a = tg.do(t, http.MethodOptions, "/api/v1/services/payment/process", "", "",
		"Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	assert.Empty(t, a.header.Get("Access-Control-Allow-Origin"), "an origin not in the list gets no CORS headers")

	a = tg.do(t, http.MethodGet, "/healthz", "", "", "Origin", "https://app.example.com")
	assert.Equal(t, "https://app.example.com", a.header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, a.header.Get("Access-Control-Expose-Headers"), "Retry-After")
}

func TestStageFault(t *testing.T) {
	tg := startGateway(t, testServer+testAuth(true)+apiServices)
	path := "/api/v1/services/payment/instances/payment-2/fault"

	a := tg.do(t, http.MethodPut, path, clientToken, `{"down":true}`)
	assert.Equal(t, http.StatusForbidden, a.status, "a client may not stage faults")
	a = tg.do(t, http.MethodPut, path, "", `{"down":true}`)
	assert.Equal(t, http.StatusForbidden, a.status, "nor may a guest")
	a = tg.do(t, http.MethodPut, path, adminToken, `{"latency":"forever"}`)
	assert.Equal(t, http.StatusBadRequest, a.status)
	a = tg.do(t, http.MethodPut, "/api/v1/services/payment/instances/payment-9/fault", adminToken, `{"down":true}`)
	assert.Equal(t, http.StatusNotFound, a.status)

	a = tg.do(t, http.MethodPut, path, adminToken, `{"error_rate":1}`)
	require.Equal(t, http.StatusOK, a.status, "body %s", a.body)
	assert.Equal(t, 1.0, tg.current().services["payment"].instances[1].demo.currentFault().ErrorRate)

	a = tg.do(t, http.MethodDelete, path, adminToken, "")
	require.Equal(t, http.StatusOK, a.status, "body %s", a.body)
	assert.Equal(t, fault{}, tg.current().services["payment"].instances[1].demo.currentFault())
}

func TestPanicBecomes500(t *testing.T) {
	tg := startGateway(t, testServer+testAuth(true)+apiServices)
	h := tg.withCallInfo(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := &recorder{header: http.Header{}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "/x", nil)
	require.NoError(t, err)
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusInternalServerError, rec.status)
	assert.Contains(t, rec.body.String(), `"code":"internal"`)
}

// recorder is a minimal http.ResponseWriter for handler tests.
type recorder struct {
	header http.Header
	status int
	body   strings.Builder
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

// TestIsSafeID holds the hand-written check to the regexp that documents it.
func TestIsSafeID(t *testing.T) {
	for _, id := range []string{
		"", "a", "req_123", "A-Z.a-z:0_9", strings.Repeat("x", 128), strings.Repeat("x", 129),
		"bad id", "tab\t", "new\nline", "é", "a/b", "a+b", "a=b", "\x00", "z{", "@", "[", "`", "/", ";",
	} {
		if got, want := isSafeID(id), safeID.MatchString(id); got != want {
			t.Errorf("isSafeID(%q) = %v, want %v", id, got, want)
		}
	}
}

// TestIsSKU holds the hand-written check to the regexp that documents it.
func TestIsSKU(t *testing.T) {
	for _, sku := range []string{
		"", "S", "SKU-001", "0", "-", "-A", "A-", "A--B", strings.Repeat("A", 32), strings.Repeat("A", 33),
		"sku-001", "SKU 001", "SKU_001", "É", "A\n", "A/B", "@", "[", "`", ":", "Z", "9",
	} {
		if got, want := isSKU(sku), skuRE.MatchString(sku); got != want {
			t.Errorf("isSKU(%q) = %v, want %v", sku, got, want)
		}
	}
}
