package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var updateScreenshot = flag.Bool("update", false, "rewrite testdata/dashboard.png with the browser test's screenshot")

// testServerDemo is testServer with the localhost demo on.
var testServerDemo = strings.Replace(testServer, "    stats_interval: 20ms\n", "    stats_interval: 20ms\n    localhost_demo: true\n", 1)

// dashboardServices is a small set of services for the dashboard's tests.
const dashboardServices = `
services:
  payment:
    roles: [client, admin]
    instances:
      - {name: payment-1, demo: payment}
      - {name: payment-2, demo: payment}
`

func TestDashboardRoutes(t *testing.T) {
	tg := startGateway(t, testServer+testAuth(false)+dashboardServices)
	noRedirect := &http.Client{
		Transport:     tg.client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	tests := []struct {
		path         string
		wantStatus   int
		wantType     string
		wantLocation string
		wantBody     string
	}{
		{path: "/", wantStatus: http.StatusFound, wantLocation: "/dashboard/"},
		{path: "/dashboard", wantStatus: http.StatusTemporaryRedirect, wantLocation: "/dashboard/"},
		{path: "/dashboard/", wantStatus: http.StatusOK, wantType: "text/html; charset=utf-8", wantBody: `<script src="app.js"`},
		{path: "/dashboard/app.js", wantStatus: http.StatusOK, wantType: "text/javascript; charset=utf-8", wantBody: "new WebSocket("},
		{path: "/dashboard/style.css", wantStatus: http.StatusOK, wantType: "text/css; charset=utf-8"},
		{path: "/dashboard/config.json", wantStatus: http.StatusOK, wantType: "application/json", wantBody: `{"demo":false,"stats_interval_ms":20}`},
		{path: "/dashboard/nope.js", wantStatus: http.StatusNotFound, wantType: "application/json", wantBody: `"code":"not_found"`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, tg.url+tt.path, nil)
			require.NoError(t, err)
			resp, err := noRedirect.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var body bytes.Buffer
			_, err = body.ReadFrom(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tt.wantStatus, resp.StatusCode, "GET %s status", tt.path)
			if tt.wantType != "" {
				assert.Equal(t, tt.wantType, resp.Header.Get("Content-Type"), "GET %s Content-Type", tt.path)
			}
			if tt.wantLocation != "" {
				assert.Equal(t, tt.wantLocation, resp.Header.Get("Location"), "GET %s Location", tt.path)
			}
			assert.Contains(t, body.String(), tt.wantBody, "GET %s body", tt.path)
		})
	}
}

// TestDashboardConfig checks what config.json tells the page: whether the
// demo lets this client in without a token, or, asked with a token,
// whether the stream would take it.
func TestDashboardConfig(t *testing.T) {
	tg := startGateway(t, testServerDemo+testAuth(false)+dashboardServices)
	tests := []struct {
		name, remote, host, token string
		wantStatus                int
		want                      dashboardConfig
	}{
		{name: "localhost", remote: "127.0.0.1:5000", host: "localhost:8080", want: dashboardConfig{Demo: true}},
		{name: "loopback address", remote: "127.0.0.1:5000", host: "127.0.0.1:8080", want: dashboardConfig{Demo: true}},
		{name: "IPv6 loopback", remote: "[::1]:5000", host: "[::1]:8080", want: dashboardConfig{Demo: true}},
		{name: "another machine", remote: "192.0.2.7:5000", host: "localhost:8080", want: dashboardConfig{}},
		{name: "rebound domain name", remote: "127.0.0.1:5000", host: "evil.example:8080", want: dashboardConfig{}},
		{name: "stream token", remote: "192.0.2.7:5000", host: "gw.example", token: clientToken, want: dashboardConfig{Principal: "alice"}},
		{name: "bad token", remote: "127.0.0.1:5000", host: "localhost", token: "nope", wantStatus: http.StatusUnauthorized},
		{name: "role may not watch", remote: "127.0.0.1:5000", host: "localhost", token: outsiderToken, wantStatus: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://"+tt.host+"/dashboard/config.json", nil)
			r.RemoteAddr = tt.remote
			if tt.token != "" {
				r.Header.Set("Authorization", "Bearer "+tt.token)
			}
			w := httptest.NewRecorder()
			tg.handler.ServeHTTP(w, r)
			if tt.wantStatus != 0 {
				assert.Equal(t, tt.wantStatus, w.Code, "GET /dashboard/config.json status; body %s", w.Body)
				return
			}
			require.Equal(t, http.StatusOK, w.Code, "GET /dashboard/config.json status; body %s", w.Body)
			var got dashboardConfig
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
			tt.want.StatsIntervalMillis = 20
			assert.Equal(t, tt.want, got, "config.json from %s for host %s", tt.remote, tt.host)
		})
	}
}

func TestLocalHostName(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"localhost", true},
		{"localhost:8080", true},
		{"LOCALHOST.:8080", true},
		{"dash.localhost:8080", true},
		{"127.0.0.1:8080", true},
		{"127.8.9.10", true},
		{"[::1]:8080", true},
		{"::1", true},
		{"localhost.example:8080", false},
		{"notlocalhost:8080", false},
		{"10.0.0.1:8080", false},
		{"[::2]:8080", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := localHostName(tt.host); got != tt.want {
			t.Errorf("localHostName(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

// TestStreamCaller checks who may watch the stream: never a caller without
// a token, even when the API lets anonymous callers in, except a local one
// when the localhost demo is on.
func TestStreamCaller(t *testing.T) {
	open := startGateway(t, testServer+testAuth(true)+dashboardServices)
	withDemo := startGateway(t, testServerDemo+testAuth(true)+dashboardServices)
	tests := []struct {
		name       string
		gw         *testGateway
		remote     string
		host       string
		token      string
		wantStatus int
		wantName   string
	}{
		{name: "anonymous API, no token", gw: open, remote: "127.0.0.1:1", host: "localhost", wantStatus: 401},
		{name: "client token", gw: open, remote: "192.0.2.1:1", host: "gw.example", token: clientToken, wantName: "alice"},
		{name: "role not allowed", gw: open, remote: "127.0.0.1:1", host: "localhost", token: outsiderToken, wantStatus: 403},
		{name: "demo, local", gw: withDemo, remote: "127.0.0.1:1", host: "localhost:8080", wantName: localDemoPrincipal.Name},
		{name: "demo, another machine", gw: withDemo, remote: "192.0.2.1:1", host: "localhost:8080", wantStatus: 401},
		{name: "demo, rebound name", gw: withDemo, remote: "127.0.0.1:1", host: "evil.example", wantStatus: 401},
		{name: "demo, bad token", gw: withDemo, remote: "127.0.0.1:1", host: "localhost", token: "nope", wantStatus: 401},
		{name: "demo, role not allowed", gw: withDemo, remote: "127.0.0.1:1", host: "localhost", token: outsiderToken, wantStatus: 403},
		{name: "demo, admin token", gw: withDemo, remote: "127.0.0.1:1", host: "localhost", token: adminToken, wantName: "root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://"+tt.host+"/ws", nil)
			r.RemoteAddr = tt.remote
			if tt.token != "" {
				r.Header.Set("Authorization", "Bearer "+tt.token)
			}
			who, aerr := tt.gw.streamCaller(tt.gw.current(), r)
			if tt.wantStatus != 0 {
				require.NotNil(t, aerr, "streamCaller() error")
				assert.Equal(t, tt.wantStatus, aerr.Status, "streamCaller() status")
				return
			}
			require.Nil(t, aerr, "streamCaller() error")
			assert.Equal(t, tt.wantName, who.Name, "streamCaller() principal")
		})
	}

	// Over a real connection from 127.0.0.1: refused without a token, let
	// in by the demo.
	t.Run("dial without a token", func(t *testing.T) {
		_, resp, err := websocket.Dial(t.Context(), open.wsURL(), &websocket.DialOptions{HTTPClient: open.client})
		require.Error(t, err, "Dial(/ws) without a token")
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "Dial(/ws) status")
	})
	t.Run("dial the demo", func(t *testing.T) {
		c := withDemo.dialStream(t, "")
		c.CloseNow()
	})
}

// dashboardBrowserConfig is the gateway the browser test watches: payment
// for the counts and instance health, user for the cache, inventory for the
// rate limit, order for the breaker, notification for background traffic.
var dashboardBrowserConfig = `
server:
  addr: 127.0.0.1:0
  drain_timeout: 5s
  websocket:
    roles: [client]
    stats_interval: 250ms
    client_buffer: 1024
audit: {sink: off}
log: {level: warn}
seed: 1
` + testAuth(false) + `
services:
  payment:
    roles: [client, admin]
    health_check: {interval: 100ms, timeout: 100ms, unhealthy_after: 1, healthy_after: 1}
    instances:
      - {name: payment-1, demo: payment, latency: 3ms, jitter: 12ms}
      - {name: payment-2, demo: payment, latency: 3ms, jitter: 12ms}
  user:
    roles: [client, admin]
    cache: {ttl: 1m, actions: [get]}
    instances:
      - {name: user-1, demo: user, latency: 2ms, jitter: 4ms}
  inventory:
    roles: [client, admin]
    rate_limit: {rate: 0.01, burst: 3, key: service}
    instances:
      - {name: inventory-1, demo: inventory, latency: 1ms}
  order:
    roles: [client, admin]
    breaker: {consecutive_failures: 3, open_timeout: 1s}
    balance: {eject_after: 1000}
    instances:
      - {name: order-1, demo: order, latency: 2ms, jitter: 6ms}
  notification:
    roles: [client, admin]
    instances:
      - {name: notification-1, demo: notification, latency: 10ms, jitter: 40ms}
      - {name: notification-2, demo: notification, latency: 10ms, jitter: 60ms, error_rate: 0.05}
`

// TestDashboardInBrowser opens the dashboard in a headless Chromium, signs
// in with a token, and watches the numbers, an instance's health and a
// breaker change as the test sends requests and stages failures. It needs
// chromedriver and Chromium (Debian: chromium, chromium-driver); it skips
// without them, unless PROXY_REQUIRE_BROWSER is set.
func TestDashboardInBrowser(t *testing.T) {
	d := startBrowser(t, 1440, 1180)
	tg := startGateway(t, dashboardBrowserConfig)
	card := func(service string) string { return `[data-service="` + service + `"]` }
	field := func(service, name string) string {
		return `document.querySelector('` + card(service) + ` [data-field="` + name + `"]').textContent`
	}
	wait := func(what, cond, context string) {
		t.Helper()
		d.waitUntil(what, cond, context, 15*time.Second)
	}
	send := func(service, body string) int {
		t.Helper()
		return tg.process(t, service, clientToken, body).status
	}

	// Without a token, the page asks for one.
	d.navigate(tg.url + "/dashboard/")
	wait("the sign-in form", `!document.getElementById('login').hidden`, "body")
	assert.Equal(t, "signed out", d.text("#conn"), "connection pill before signing in")

	d.typeInto("#token", "not-a-token")
	d.click("#login-form button")
	wait("the refusal", `document.getElementById('login-error').textContent.includes('did not accept')`, "#login")

	d.clear("#token")
	d.typeInto("#token", outsiderToken)
	d.click("#login-form button")
	wait("the refusal of a role that may not watch", `document.getElementById('login-error').textContent.includes('may not watch the event stream')`, "#login")
	saveScreenshot(t, "dashboard-signin.png", d.screenshot(), false)

	d.clear("#token")
	d.typeInto("#token", clientToken)
	d.click("#login-form button")
	wait("the live stream", `document.getElementById('conn').dataset.state === 'live'`, "header")
	wait("the first stats", field("payment", "requests")+` === '0'`, "main")
	assert.Equal(t, "signed in as alice", d.text("#who"), "who")

	// The token is kept for the tab: a reload goes straight to the stream.
	d.navigate(tg.url + "/dashboard/")
	wait("the stream after a reload", `document.getElementById('conn').dataset.state === 'live' && `+field("payment", "requests")+` === '0'`, "body")

	// Background traffic, paced by the demo instances' latency, so the
	// charts and the events have something to show.
	stopLoad := notificationLoad(t, tg)
	defer stopLoad()

	// Requests: the count, rate and latency appear.
	for i := range 12 {
		require.Equal(t, http.StatusOK, send("payment", payment(fmt.Sprintf("pay-%d", i))), "payment %d", i)
	}
	wait("12 payment requests", field("payment", "requests")+` === '12'`, card("payment"))
	// Durations, in ms or, on a loaded machine, in s; "—" before any.
	isDuration := func(f string) string { return `/ m?s$/.test(` + f + `)` }
	wait("payment latency", isDuration(field("payment", "p50"))+` && `+isDuration(field("payment", "p99")), card("payment"))
	wait("payment rate", `parseFloat(`+field("payment", "rate")+`) > 0`, card("payment"))
	assert.Equal(t, "0%", d.text(card("payment")+` [data-field="errors"]`), "payment errors")

	// The cache: a create and a get miss, two more gets hit.
	a := tg.process(t, "user", clientToken, `{"id":"u-1","user_id":"u","data":{"action":"create","name":"Priya","email":"priya@example.com"}}`)
	require.Equal(t, http.StatusOK, a.status, "user create: %s", a.body)
	var created struct {
		Data struct {
			UserID string `json:"user_id"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(a.body, &created))
	for i := range 3 {
		get := `{"id":"u-get-` + strconv.Itoa(i) + `","user_id":"u","data":{"action":"get","user_id":"` + created.Data.UserID + `"}}`
		require.Equal(t, http.StatusOK, send("user", get), "user get %d", i)
	}
	wait("the cache hit ratio", field("user", "cache")+` === '50%'`, card("user"))

	// The rate limit: a burst of 3, then 429s.
	limited := 0
	for i := range 5 {
		if send("inventory", `{"id":"i-`+strconv.Itoa(i)+`","user_id":"u","data":{"action":"stock","sku":"SKU-001"}}`) == http.StatusTooManyRequests {
			limited++
		}
	}
	require.Equal(t, 2, limited, "inventory calls rate limited")
	wait("2 rate-limited calls", field("inventory", "limited")+` === '2'`, card("inventory"))

	// Let the charts fill: a few seconds, and more for the README's
	// screenshot.
	chartSeconds := 2
	if *updateScreenshot {
		chartSeconds = 8
	}
	wait(fmt.Sprintf("%d s of charts", chartSeconds), fmt.Sprintf(`parseInt((/last (\d+) s/.exec(`+field("notification", "span")+`) || [0, 0])[1]) >= %d`, chartSeconds), card("notification"))

	// An instance whose health checks fail is shown down.
	stage := func(service, instance, fault string) {
		t.Helper()
		method := http.MethodPut
		if fault == "" {
			method = http.MethodDelete
		}
		a := tg.do(t, method, "/api/v1/services/"+service+"/instances/"+instance+"/fault", adminToken, fault)
		require.Equal(t, http.StatusOK, a.status, "%s fault on %s: %s", method, instance, a.body)
	}
	instanceState := func(instance string) string {
		return `document.querySelector('[data-instance="` + instance + `"]')?.dataset.state`
	}
	stage("payment", "payment-2", `{"down":true}`)
	wait("payment-2 down", instanceState("payment-2")+` === 'down'`, card("payment"))
	wait("payment degraded", field("payment", "status")+` === 'degraded'`, card("payment"))

	// A failing instance opens its service's breaker.
	stage("order", "order-1", `{"error_rate":1}`)
	order := `{"id":"o-%d","user_id":"u","data":{"action":"create","currency":"INR","items":[{"sku":"SKU-001","quantity":1,"unit_price":5}]}}`
	for i := range 3 {
		assert.Equal(t, http.StatusBadGateway, send("order", fmt.Sprintf(order, i)), "order %d on a failing instance", i)
	}
	wait("the order breaker open", field("order", "breaker")+` === 'open'`, card("order"))
	wait("order errors", field("order", "errors")+` === '100%'`, card("order"))
	wait("the breaker event", `[...document.querySelectorAll('#events li')].some(li => li.textContent.includes('order breaker closed → open'))`, "#events")
	d.click("#only-problems")
	wait("failures and changes only", `document.querySelector('#events li') && ![...document.querySelectorAll('#events .badge')].some(b => b.textContent === 'ok')`, "#events")
	d.script(`document.activeElement.blur()`, nil)
	saveScreenshot(t, "dashboard.png", d.screenshot(), *updateScreenshot)

	// On a phone-sized screen, nothing is wider than the screen.
	d.resize(390, 844)
	wait("one column", `document.documentElement.scrollWidth <= window.innerWidth && window.innerWidth < 500`, "body")
	saveScreenshot(t, "dashboard-narrow.png", d.screenshot(), false)
	d.resize(1440, 1180)

	// Healed, the instance comes back and the breaker closes: half-open
	// after its cool-down, then closed by a successful probe.
	stage("payment", "payment-2", "")
	wait("payment-2 healthy", instanceState("payment-2")+` === 'healthy'`, card("payment"))
	stage("order", "order-1", "")
	wait("the order breaker half-open", field("order", "breaker")+` === 'half-open'`, card("order"))
	require.Equal(t, http.StatusOK, send("order", fmt.Sprintf(order, 100)), "order probe on the healed instance")
	wait("the order breaker closed", field("order", "breaker")+` === 'closed'`, card("order"))
	wait("payment up", field("payment", "status")+` === 'up'`, card("payment"))

	// Signing out forgets the token.
	d.click("#signout")
	wait("the sign-in form after signing out", `!document.getElementById('login').hidden && sessionStorage.length === 0`, "body")

	// The default configuration's localhost demo: the page opens the stream
	// at once, without a token.
	demo := startGateway(t, string(defaultConfig))
	d.navigate("http://localhost:" + strings.TrimPrefix(demo.url, "http://127.0.0.1:") + "/dashboard/")
	wait("the demo stream", `document.getElementById('conn').dataset.state === 'live' && document.querySelectorAll('[data-service]').length === 5`, "body")
	assert.Equal(t, "demo: no token needed on this machine", d.text("#who"), "who in the demo")
}

// notificationLoad sends notification calls one after another until the
// returned function is called; each call takes the demo instance's staged
// latency, which paces the load.
func notificationLoad(t *testing.T, tg *testGateway) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			body := fmt.Sprintf(`{"id":"n-%d","user_id":"u","data":{"channel":"email","to":"priya@example.com","subject":"Order","message":"Your order has shipped."}}`, i)
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, tg.url+"/api/v1/services/notification/process", strings.NewReader(body))
			if err != nil {
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+clientToken)
			resp, err := tg.client.Do(req)
			if err != nil {
				return // canceled at the end
			}
			_ = resp.Body.Close()
		}
	})
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// saveScreenshot keeps a screenshot, recompressed, in the test's artifact
// directory (see go test -artifacts) and, when update is true, in testdata
// too, for the README.
func saveScreenshot(t *testing.T, name string, shot []byte, update bool) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(shot))
	require.NoError(t, err, "decoding the screenshot")
	var buf bytes.Buffer
	require.NoError(t, (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, img))
	path := filepath.Join(t.ArtifactDir(), name)
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	t.Logf("screenshot: %s (%d bytes)", path, buf.Len())
	if update {
		require.NoError(t, os.WriteFile(filepath.Join("testdata", name), buf.Bytes(), 0o644))
	}
}
