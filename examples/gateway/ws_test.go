package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const wsServices = `
services:
  payment:
    roles: [guest, client, admin]
    balance: {policy: round_robin, eject_after: 2, eject_time: 1h, max_ejected_percent: 50}
    instances:
      - {name: payment-1, demo: payment}
      - {name: payment-2, demo: payment}
`

func (tg *testGateway) wsURL() string { return "ws" + strings.TrimPrefix(tg.url, "http") + "/ws" }

func TestStreamAuth(t *testing.T) {
	tg := startGateway(t, testServer+testAuth(false)+wsServices)
	dial := func(t *testing.T, url string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
		if opts == nil {
			opts = &websocket.DialOptions{}
		}
		opts.HTTPClient = tg.client
		c, resp, err := websocket.Dial(t.Context(), url, opts)
		if c != nil {
			t.Cleanup(func() { c.CloseNow() })
		}
		return c, resp, err
	}
	t.Run("no token", func(t *testing.T) {
		_, resp, err := dial(t, tg.wsURL(), nil)
		require.Error(t, err)
		require.NotNil(t, resp)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer")
	})
	t.Run("bad token in the query", func(t *testing.T) {
		_, resp, err := dial(t, tg.wsURL()+"?token=nope", nil)
		require.Error(t, err)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
	t.Run("token in the query", func(t *testing.T) {
		c, _, err := dial(t, tg.wsURL()+"?token="+clientToken, nil)
		require.NoError(t, err)
		assert.Equal(t, "hello", readEvent(t, c).Type)
	})
	t.Run("token as a subprotocol", func(t *testing.T) {
		c, _, err := dial(t, tg.wsURL(), &websocket.DialOptions{Subprotocols: []string{wsSubprotocol, wsBearerPrefix + clientToken}})
		require.NoError(t, err)
		assert.Equal(t, wsSubprotocol, c.Subprotocol(), "the server picks the stream's subprotocol, never echoes the token")
		assert.Equal(t, "hello", readEvent(t, c).Type)
	})
	t.Run("role not allowed", func(t *testing.T) {
		_, resp, err := dial(t, tg.wsURL()+"?token="+outsiderToken, nil)
		require.Error(t, err)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	})
	t.Run("admin", func(t *testing.T) {
		c, _, err := dial(t, tg.wsURL()+"?token="+adminToken, nil)
		require.NoError(t, err)
		assert.Equal(t, "hello", readEvent(t, c).Type)
	})
	t.Run("foreign origin", func(t *testing.T) {
		h := http.Header{"Authorization": {"Bearer " + clientToken}, "Origin": {"https://evil.example"}}
		_, resp, err := dial(t, tg.wsURL(), &websocket.DialOptions{HTTPHeader: h})
		require.Error(t, err)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		a := tg.do(t, http.MethodGet, "/ws", clientToken, "", "Origin", "https://evil.example",
			"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		require.Equal(t, http.StatusForbidden, a.status)
		assert.Equal(t, "forbidden", a.errorBody(t).Code, "a JSON refusal")
	})
	t.Run("allowed origin", func(t *testing.T) {
		tg := startGateway(t, strings.Replace(testServer, "roles: [client]\n", "roles: [client]\n    allowed_origins: [\"*.example.com\"]\n", 1)+testAuth(false)+wsServices)
		h := http.Header{"Authorization": {"Bearer " + clientToken}, "Origin": {"https://app.example.com"}}
		c, _, err := websocket.Dial(t.Context(), tg.wsURL(), &websocket.DialOptions{HTTPHeader: h, HTTPClient: tg.client})
		require.NoError(t, err)
		defer c.CloseNow()
		assert.Equal(t, "hello", readEvent(t, c).Type)
	})
	t.Run("same origin", func(t *testing.T) {
		h := http.Header{"Authorization": {"Bearer " + clientToken}, "Origin": {tg.url}}
		c, _, err := dial(t, tg.wsURL(), &websocket.DialOptions{HTTPHeader: h})
		require.NoError(t, err)
		assert.Equal(t, "hello", readEvent(t, c).Type)
	})
	t.Run("not a WebSocket handshake", func(t *testing.T) {
		a := tg.do(t, http.MethodGet, "/ws", clientToken, "")
		require.Equal(t, http.StatusUpgradeRequired, a.status, "GET /ws without Upgrade: %s", a.body)
		assert.Equal(t, codeUpgradeRequired, a.errorBody(t).Code)
		assert.Equal(t, "application/json", a.header.Get("Content-Type"))
		assert.Equal(t, "websocket", a.header.Get("Upgrade"))
		a = tg.do(t, http.MethodGet, "/ws", clientToken, "", "Connection", "Upgrade", "Upgrade", "websocket")
		require.Equal(t, http.StatusBadRequest, a.status, "GET /ws without Sec-WebSocket-Version: %s", a.body)
		assert.Equal(t, "invalid", a.errorBody(t).Code)
		assert.Equal(t, "13", a.header.Get("Sec-WebSocket-Version"))
	})
	t.Run("client that sends data is disconnected", func(t *testing.T) {
		c := tg.dialStream(t, clientToken)
		require.NoError(t, c.Write(t.Context(), websocket.MessageText, []byte("hi")))
		for {
			if _, _, err := c.Read(t.Context()); err != nil {
				assert.Equal(t, websocket.StatusPolicyViolation, websocket.CloseStatus(err), "Read() = %v", err)
				return
			}
		}
	})
}

func TestStreamEvents(t *testing.T) {
	tg := startGateway(t, testServer+testAuth(true)+wsServices)
	c := tg.dialStream(t, adminToken)

	// A request summary for each call.
	require.Equal(t, http.StatusOK, tg.process(t, "payment", clientToken, payment("ev1")).status)
	data := waitEvent(t, c, "request", func(json.RawMessage) bool { return true })
	var req requestEvent
	require.NoError(t, json.Unmarshal(data, &req))
	assert.Equal(t, "payment", req.Service)
	assert.Equal(t, "alice", req.Principal)
	assert.Equal(t, "ok", req.Outcome)
	assert.Equal(t, http.StatusOK, req.Status)

	// An instance that keeps failing is ejected: a health event.
	a := tg.do(t, http.MethodPut, "/api/v1/services/payment/instances/payment-2/fault", adminToken, `{"error_rate":1}`)
	require.Equal(t, http.StatusOK, a.status, "body %s", a.body)
	for i := range 4 { // round robin: two of these reach payment-2
		tg.process(t, "payment", clientToken, payment("ej"+string(rune('a'+i))))
	}
	data = waitEvent(t, c, "health", func(d json.RawMessage) bool {
		return strings.Contains(string(d), `"change":"ejected"`)
	})
	assert.Contains(t, string(data), `"instance":"payment-2"`)
}

func TestStreamDropsSlowClient(t *testing.T) {
	tg := startGateway(t, strings.Replace(testServer, "client_buffer: 256", "client_buffer: 2", 1)+testAuth(true)+wsServices)
	c := tg.dialStream(t, clientToken) // and then does not read
	c.SetReadLimit(1 << 20)
	big := strings.Repeat("x", 64<<10)
	for i := 0; tg.hub.clients() > 0; i++ {
		require.Less(t, i, 100_000, "the client was never dropped")
		tg.hub.publish(event{Type: "request", Data: big})
	}
	assert.Equal(t, uint64(1), tg.hub.dropped.Load())
	// Reading now drains what was sent and ends with the close frame.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err != nil {
			assert.Equal(t, websocket.StatusPolicyViolation, websocket.CloseStatus(err), "Read() = %v", err)
			return
		}
	}
}

func TestHub(t *testing.T) {
	always := func(*table) bool { return true }
	h := newHub(2, 2)
	a, err := h.subscribe(always)
	require.NoError(t, err)
	b, err := h.subscribe(always)
	require.NoError(t, err)
	_, err = h.subscribe(always)
	require.ErrorIs(t, err, errTooMany)

	for range 3 {
		h.publish(event{Type: "x"})
		<-b.C // b keeps up, a does not
	}
	select {
	case <-a.Done():
	default:
		t.Fatal("a slow subscriber was not dropped")
	}
	assert.ErrorIs(t, a.Err(), errSlowClient)
	assert.Equal(t, 1, h.clients())
	h.unsubscribe(a)

	// A reload that no longer allows a subscriber ends it; the others
	// go on.
	revokedTable := &table{}
	c, err := h.subscribe(func(t *table) bool { return t != revokedTable })
	require.NoError(t, err)
	h.recheck(&table{})
	h.recheck(revokedTable)
	select {
	case <-c.Done():
	default:
		t.Fatal("recheck did not end a subscriber the table no longer allows")
	}
	assert.ErrorIs(t, c.Err(), errRevoked)
	h.unsubscribe(c)
	assert.Equal(t, 1, h.clients(), "b after the recheck")

	closed := make(chan error, 1)
	go func() { closed <- h.Close() }()
	<-b.Done()
	assert.ErrorIs(t, b.Err(), errHubClosed)
	h.unsubscribe(b)
	require.NoError(t, <-closed)
	_, err = h.subscribe(always)
	assert.True(t, errors.Is(err, errHubClosed), "subscribe after Close = %v", err)
}

// TestStreamSeesBreakerOpenAndClose stages a failing instance, watches the
// breaker open on the stream (and the API answer 503), heals the instance,
// and watches the breaker go half-open and close again. The breaker stays
// open for a second, on the wall clock: the checks of the open breaker must
// all be made before it lets a probe through, however loaded the machine.
func TestStreamSeesBreakerOpenAndClose(t *testing.T) {
	tg := startGateway(t, testServer+testAuth(true)+`
services:
  flaky:
    roles: [guest, client, admin]
    breaker: {consecutive_failures: 3, open_timeout: 1s, half_open_probes: 1}
    instances:
      - {name: flaky-1, demo: order}
`)
	c := tg.dialStream(t, adminToken)
	get := `{"id":"b%d","user_id":"u","data":{"action":"create","currency":"INR","items":[{"sku":"SKU-001","quantity":1,"unit_price":5}]}}`
	call := func(i int) answer { return tg.process(t, "flaky", clientToken, fmt.Sprintf(get, i)) }
	breakerTo := func(state string) func(json.RawMessage) bool {
		return func(d json.RawMessage) bool {
			var b struct{ Service, To string }
			return json.Unmarshal(d, &b) == nil && b.Service == "flaky" && b.To == state
		}
	}

	require.Equal(t, http.StatusOK, call(0).status)
	a := tg.do(t, http.MethodPut, "/api/v1/services/flaky/instances/flaky-1/fault", adminToken, `{"error_rate":1}`)
	require.Equal(t, http.StatusOK, a.status, "body %s", a.body)
	for i := 1; i <= 3; i++ {
		a := call(i)
		require.Equal(t, http.StatusBadGateway, a.status, "call %d: body %s", i, a.body)
	}
	a = call(4)
	require.Equal(t, http.StatusServiceUnavailable, a.status, "body %s", a.body)
	assert.Equal(t, "circuit_open", a.errorBody(t).Code)
	waitEvent(t, c, "breaker", breakerTo("open"))

	h := tg.do(t, http.MethodGet, "/api/v1/services/flaky/health", clientToken, "")
	assert.Equal(t, http.StatusServiceUnavailable, h.status, "an open breaker takes the service down: %s", h.body)

	a = tg.do(t, http.MethodDelete, "/api/v1/services/flaky/instances/flaky-1/fault", adminToken, "")
	require.Equal(t, http.StatusOK, a.status)
	// The stats snapshot reads the breaker's state, which turns half-open
	// once the cool-down is over.
	waitEvent(t, c, "breaker", breakerTo("half-open"))
	require.Equal(t, http.StatusOK, call(5).status, "the probe succeeds")
	waitEvent(t, c, "breaker", breakerTo("closed"))
	assert.Equal(t, http.StatusOK, call(6).status)
}
