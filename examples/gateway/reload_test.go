package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReload swaps in a configuration with a new service, a role taken
// away and an instance removed, while a stream client watches.
func TestReload(t *testing.T) {
	before := testServer + testAuth(true) + `
services:
  payment:
    roles: [guest, client]
    instances: [{name: payment-1, demo: payment}, {name: payment-2, demo: payment}]
`
	after := testServer + testAuth(true) + `
services:
  payment:
    roles: [client]
    instances: [{name: payment-1, demo: payment}]
  inventory:
    roles: [guest]
    health_check: {interval: 10ms, timeout: 5ms, unhealthy_after: 1, healthy_after: 1}
    instances: [{name: inventory-1, demo: inventory, down: true}]
`
	tg := startGateway(t, before)
	c := tg.dialStream(t, clientToken)
	first := tg.process(t, "payment", "", payment("r1"))
	require.Equal(t, http.StatusOK, first.status, "body %s", first.body)
	require.Equal(t, http.StatusNotFound, tg.process(t, "inventory", "", `{"id":"i","user_id":"u","data":{"action":"stock","sku":"SKU-001"}}`).status)
	prom := string(tg.do(t, http.MethodGet, "/metrics", "", "").body)
	require.Contains(t, prom, `proxy_instance_healthy{instance="payment-2",service="payment"} 1`)

	cfg, err := loadConfig([]byte(after), "after.yaml")
	require.NoError(t, err)
	require.NoError(t, tg.reload(cfg))
	waitEvent(t, c, "reload", func(d json.RawMessage) bool { return strings.Contains(string(d), `"result":"success"`) })

	assert.Equal(t, http.StatusForbidden, tg.process(t, "payment", "", payment("r2")).status, "guests lost payment")
	again := tg.process(t, "payment", clientToken, payment("r1"))
	require.Equal(t, http.StatusOK, again.status, "body %s", again.body)
	var a, b struct {
		Data paymentResult `json:"data"`
	}
	require.NoError(t, json.Unmarshal(first.body, &a))
	require.NoError(t, json.Unmarshal(again.body, &b))
	assert.Equal(t, a.Data, b.Data, "the demo service keeps its payments across the reload")

	// The new service is routed, and its health checks run at once.
	waitInstance(t, tg.current().services["inventory"], "inventory-1", func(st instanceStatus) bool { return st.State == "down" })
	assert.Equal(t, http.StatusServiceUnavailable, tg.process(t, "inventory", "", `{"id":"i","user_id":"u","data":{"action":"stock","sku":"SKU-001"}}`).status)

	prom = string(tg.do(t, http.MethodGet, "/metrics", "", "").body)
	assert.NotContains(t, prom, `instance="payment-2"`, "the removed instance's series is gone")
	assert.Contains(t, prom, `gateway_config_reloads_total{result="success"} 1`)

	tg.reloadFailed(assert.AnError)
	prom = string(tg.do(t, http.MethodGet, "/metrics", "", "").body)
	assert.Contains(t, prom, `gateway_config_reloads_total{result="error"} 1`)
	assert.Equal(t, http.StatusOK, tg.process(t, "payment", clientToken, payment("r3")).status, "a failed reload leaves the configuration as it was")

	c.CloseNow()
	tg.stop()
	assert.ErrorIs(t, tg.reload(cfg), errGatewayClosed)
}

// TestReloadRevokesStreamClients reloads a configuration that no longer
// lets the client role watch the stream: the client's stream, already open,
// is closed, while the admin's goes on.
func TestReloadRevokesStreamClients(t *testing.T) {
	tg := startGateway(t, testServer+testAuth(false)+wsServices)
	alice := tg.dialStream(t, clientToken)
	root := tg.dialStream(t, adminToken)

	cfg, err := loadConfig([]byte(strings.Replace(testServer, "roles: [client]", "roles: []", 1)+testAuth(false)+wsServices), "admins-only.yaml")
	require.NoError(t, err)
	require.NoError(t, tg.reload(cfg))

	waitEvent(t, root, "reload", func(json.RawMessage) bool { return true })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		_, msg, err := alice.Read(ctx)
		if err != nil {
			assert.Equal(t, websocket.StatusPolicyViolation, websocket.CloseStatus(err), "alice's Read() = %v", err)
			break
		}
		var ev streamEvent
		require.NoError(t, json.Unmarshal(msg, &ev))
		require.NotEqual(t, "reload", ev.Type, "alice was still sent events after the reload took her role away")
	}
	_, resp, err := websocket.Dial(t.Context(), tg.wsURL()+"?token="+clientToken, &websocket.DialOptions{HTTPClient: tg.client})
	require.Error(t, err, "Dial(/ws) as alice after the reload")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "Dial(/ws) as alice after the reload")
}

func TestRestartSections(t *testing.T) {
	base := func() *config {
		cfg, err := loadConfig([]byte(testServer+testAuth(true)+wsServices), "t.yaml")
		require.NoError(t, err)
		return cfg
	}
	cur, next := base(), base()
	next.Server.WebSocket.Roles = []string{"admin"}
	next.Auth.AnonymousRole = ""
	next.Services["payment"].Roles = []string{"admin"}
	assert.Empty(t, restartSections(cur, next), "services, auth and stream roles reload")
	next.Server.MaxBodyBytes++
	next.Log.Level = "warn"
	assert.Equal(t, []string{"server", "log"}, restartSections(cur, next))
}

// reloadAnswer is what the reload route answers.
type reloadAnswer struct {
	Result          string   `json:"result"`
	Services        []string `json:"services"`
	RestartRequired []string `json:"restart_required"`
	Error           struct {
		Code     string          `json:"code"`
		Message  string          `json:"message"`
		Problems []configProblem `json:"problems"`
	} `json:"error"`
}

func (tg *testGateway) reloadRoute(t *testing.T, token string) (int, reloadAnswer) {
	t.Helper()
	a := tg.do(t, http.MethodPost, "/api/v1/admin/reload", token, "")
	var r reloadAnswer
	require.NoError(t, json.Unmarshal(a.body, &r), "reload answer %s", a.body)
	return a.status, r
}

// TestReloadRoute reloads the configuration file through the admin route:
// only for admin roles; a file with mistakes, or one that needs a Redis the
// gateway was started without, is refused with its problems and changes
// nothing.
func TestReloadRoute(t *testing.T) {
	before := testServer + testAuth(true) + `
services:
  payment:
    roles: [guest]
    instances: [{name: payment-1, demo: payment}]
`
	tg := runGateway(t, before)
	write := func(yml string) { require.NoError(t, os.WriteFile(tg.file, []byte(yml), 0o600)) }
	metric := func(name string) float64 {
		t.Helper()
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(string(tg.do(t, http.MethodGet, "/metrics", "", "").body))
		require.NotNil(t, m, "metric %s", name)
		f, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err)
		return f
	}
	started := metric("gateway_config_last_reload_success_timestamp_seconds")
	assert.Greater(t, started, float64(time.Now().Add(-time.Hour).Unix()), "the start-up load counts as a success")

	for _, tc := range []struct {
		token string
		want  int
	}{{"", http.StatusForbidden}, {clientToken, http.StatusForbidden}, {"wrong", http.StatusUnauthorized}} {
		a := tg.do(t, http.MethodPost, "/api/v1/admin/reload", tc.token, "")
		assert.Equal(t, tc.want, a.status, "reload with token %q: %s", tc.token, a.body)
	}
	a := tg.do(t, http.MethodGet, "/api/v1/admin/reload", adminToken, "")
	assert.Equal(t, http.StatusMethodNotAllowed, a.status, "GET")

	t.Run("a broken file is refused with its problems", func(t *testing.T) {
		write(testServer + testAuth(true) + `
services:
  payment:
    roles: [guest]
    rate_limit: {rate: -1}
    colour: blue
    instances: [{name: payment-1, demo: payment}]
`)
		status, r := tg.reloadRoute(t, adminToken)
		require.Equal(t, http.StatusUnprocessableEntity, status)
		assert.Equal(t, codeInvalidConfig, r.Error.Code)
		assert.Contains(t, r.Error.Message, "the configuration is unchanged")
		require.Len(t, r.Error.Problems, 1, "the decoder's problems come first: %+v", r.Error.Problems)
		p := r.Error.Problems[0]
		assert.Equal(t, "services.payment.colour", p.Path)
		assert.Contains(t, p.Message, `unknown key "colour"`)
		assert.Positive(t, p.Line, "with its line")
		assert.Equal(t, float64(1), metric(`gateway_config_reloads_total{result="error"}`))
		assert.Equal(t, http.StatusOK, tg.process(t, "payment", "", payment("b1")).status, "the old configuration still serves")
	})
	t.Run("a file that needs Redis is refused by a gateway without", func(t *testing.T) {
		write(testServer + testAuth(true) + `
redis: {address: "127.0.0.1:1"}
services:
  payment:
    roles: [guest]
    rate_limit: {store: redis}
    instances: [{name: payment-1, demo: payment}]
`)
		status, r := tg.reloadRoute(t, adminToken)
		require.Equal(t, http.StatusUnprocessableEntity, status)
		require.Len(t, r.Error.Problems, 1)
		assert.Contains(t, r.Error.Problems[0].Message, "started without a redis section")
		assert.Equal(t, float64(2), metric(`gateway_config_reloads_total{result="error"}`))
	})
	t.Run("a good file is reloaded", func(t *testing.T) {
		write(testServer + testAuth(true) + `
services:
  payment:
    roles: [client]
    instances: [{name: payment-1, demo: payment}]
  inventory:
    roles: [guest]
    instances: [{name: inventory-1, demo: inventory}]
`)
		status, r := tg.reloadRoute(t, adminToken)
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, "success", r.Result)
		assert.Equal(t, []string{"inventory", "payment"}, r.Services)
		assert.Empty(t, r.RestartRequired)
		assert.Equal(t, http.StatusForbidden, tg.process(t, "payment", "", payment("b2")).status, "guests lost payment")
		assert.Equal(t, float64(1), metric(`gateway_config_reloads_total{result="success"}`))
		assert.GreaterOrEqual(t, metric("gateway_config_last_reload_success_timestamp_seconds"), started)
		assert.Contains(t, tg.logs.String(), `"msg":"configuration reloaded on request"`)
	})
}

// TestReloadUnderLoad reloads the configuration through the admin route
// while a few clients call the gateway without pause: a stricter rate limit
// takes effect (429s appear), a broken file changes nothing, the old limit
// comes back (429s disappear), and every call gets a whole answer, never a
// 5xx.
func TestReloadUnderLoad(t *testing.T) {
	config := func(limit string) string {
		return testServer + testAuth(true) + `
services:
  payment:
    roles: [guest]
    rate_limit: ` + limit + `
    instances: [{name: payment-1, demo: payment}, {name: payment-2, demo: payment}]
`
	}
	loose := config("{rate: 1000000, burst: 1000000, key: service}")
	strict := config("{rate: 0.001, burst: 1, key: service}") // one call, then none for 1000s
	tg := runGateway(t, loose)
	write := func(yml string) { require.NoError(t, os.WriteFile(tg.file, []byte(yml), 0o600)) }

	// phase is even while one configuration is in force and odd while a
	// reload is under way; a call is counted for a phase when it started
	// and ended in it.
	const (
		workers  = 4
		perPhase = 30 // calls counted per stable phase
	)
	var (
		phase    atomic.Int64
		sent     atomic.Int64
		answered atomic.Int64
		mu       sync.Mutex
		byPhase  = map[int64]map[int]int{} // phase, status: calls
		progress = make(chan int64, 1<<14)
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				start := phase.Load()
				sent.Add(1)
				id := fmt.Sprintf("w%d-%d", w, i)
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, tg.url+"/api/v1/services/payment/process", strings.NewReader(payment(id)))
				if err != nil {
					t.Errorf("NewRequest: %v", err)
					return
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := tg.client.Do(req)
				if err != nil {
					t.Errorf("call %s: %v (a lost request)", id, err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || !isJSON(body) {
					t.Errorf("call %s: answer %q, %v: want a whole JSON answer", id, body, err)
					return
				}
				answered.Add(1)
				if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusTooManyRequests {
					t.Errorf("call %s = %d %s, want 200 or 429", id, resp.StatusCode, body)
				}
				if end := phase.Load(); end == start && end%2 == 0 {
					mu.Lock()
					if byPhase[end] == nil {
						byPhase[end] = map[int]int{}
					}
					byPhase[end][resp.StatusCode]++
					mu.Unlock()
					select {
					case progress <- end:
					default:
					}
				}
			}
		})
	}
	stopWorkers := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	t.Cleanup(stopWorkers) // before the gateway stops, even on a failure
	// awaitPhase lets perPhase calls be counted in phase p.
	awaitPhase := func(p int64) {
		t.Helper()
		timeout := time.NewTimer(60 * time.Second)
		defer timeout.Stop()
		for n := 0; n < perPhase; {
			select {
			case got := <-progress:
				if got == p {
					n++
				}
			case <-timeout.C:
				t.Fatalf("phase %d: only %d calls counted", p, n)
			}
		}
	}
	reload := func(yml string, want int) reloadAnswer {
		t.Helper()
		write(yml)
		phase.Add(1)
		status, r := tg.reloadRoute(t, adminToken)
		phase.Add(1)
		require.Equal(t, want, status, "reload: %+v", r)
		return r
	}

	awaitPhase(0)
	reload(strict, http.StatusOK)
	awaitPhase(2)
	bad := reload("services: {payment: {roles: [guest], instances: []}}\n", http.StatusUnprocessableEntity)
	require.Len(t, bad.Error.Problems, 1, "%+v", bad.Error)
	assert.Equal(t, "services.payment.instances", bad.Error.Problems[0].Path)
	assert.Contains(t, bad.Error.Problems[0].Message, "at least one instance is required")
	awaitPhase(4)
	reload(loose, http.StatusOK)
	awaitPhase(6)
	stopWorkers()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("calls: %d sent, %d answered; by phase and status: %v", sent.Load(), answered.Load(), byPhase)
	assert.Equal(t, sent.Load(), answered.Load(), "every call answered")
	assert.Zero(t, byPhase[0][http.StatusTooManyRequests], "loose limit: no 429")
	assert.LessOrEqual(t, byPhase[2][http.StatusOK], 1, "strict limit: at most its one token")
	assert.Positive(t, byPhase[2][http.StatusTooManyRequests], "strict limit: 429s")
	assert.Zero(t, byPhase[4][http.StatusOK], "after the broken file: still the strict limit, its token spent")
	assert.Zero(t, byPhase[6][http.StatusTooManyRequests], "loose limit again: no 429")
	prom := string(tg.do(t, http.MethodGet, "/metrics", "", "").body)
	assert.Contains(t, prom, `gateway_config_reloads_total{result="success"} 2`)
	assert.Contains(t, prom, `gateway_config_reloads_total{result="error"} 1`)
	assert.NotRegexp(t, `gateway_http_requests_total\{code="5\d\d"`, prom, "no 5xx answered")
}
