package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/proxykit/proxy/balance"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Tokens of the test configurations. The configurations hold their
// digests, made by digest.
const (
	clientToken   = "alice-client-token"
	adminToken    = "root-admin-token"
	outsiderToken = "mallory-outsider-token"
)

func digest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// testAuth is the auth section of the test configurations: alice is a
// client, root an admin, mallory has a role no service allows. With
// anonymous, callers without a token are guests.
func testAuth(anonymous bool) string {
	a := `
auth:
  admin_roles: [admin]
  tokens:
    - {name: alice, sha256: ` + digest(clientToken) + `, role: client}
    - {name: root, sha256: ` + digest(adminToken) + `, role: admin}
    - {name: mallory, sha256: ` + digest(outsiderToken) + `, role: outsider}
`
	if anonymous {
		a += "  anonymous_role: guest\n"
	}
	return a
}

// testServer is the server section of the test configurations.
const testServer = `
server:
  addr: 127.0.0.1:0
  drain_timeout: 5s
  max_body_bytes: 4096
  max_json_depth: 8
  cors:
    allowed_origins: [https://app.example.com]
  websocket:
    roles: [client]
    stats_interval: 20ms
    client_buffer: 256
audit: {sink: off}
log: {level: debug}
seed: 1
`

// testGateway is a gateway serving on a real listener, and a client for it.
type testGateway struct {
	*gateway // nil for one started by runGateway
	url      string
	client   *http.Client
	stop     func() // shuts the gateway down and waits; later calls do nothing
	file     string // the configuration file of one started by runGateway
	logs     *syncBuffer
}

// startGateway starts a gateway on 127.0.0.1:0 with the configuration yml
// and stops it when the test ends, checking that it shut down cleanly.
func startGateway(t *testing.T, yml string, opts ...option) *testGateway {
	t.Helper()
	return startGatewayLogging(t, yml, t.Output(), opts...)
}

// startGatewayLogging is startGateway with the gateway's log written to
// logs.
func startGatewayLogging(t *testing.T, yml string, logs io.Writer, opts ...option) *testGateway {
	t.Helper()
	cfg, err := loadConfig([]byte(yml), "test.yaml")
	require.NoError(t, err, "loadConfig")
	g, err := newGateway(cfg, newLogger(logs, "debug"), opts...)
	require.NoError(t, err, "newGateway")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.serve(ctx, ln) }()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	tg := &testGateway{gateway: g, url: "http://" + ln.Addr().String(), client: &http.Client{Transport: tr}}
	tg.stop = sync.OnceFunc(func() {
		// A connection the client dialled but never used would hold the
		// shutdown until the drain timeout: close them first.
		tr.CloseIdleConnections()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve() = %v, want nil", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("serve() did not return 30s after its context ended")
		}
		tr.CloseIdleConnections()
	})
	t.Cleanup(tg.stop)
	return tg
}

// runGateway runs the gateway as main does, with run, on 127.0.0.1:0 and a
// configuration file holding yml, and stops it when the test ends,
// checking that run returned nil.
func runGateway(t *testing.T, yml string) *testGateway {
	t.Helper()
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	require.NoError(t, os.WriteFile(file, []byte(yml), 0o600))
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-config", file, "-addr", "127.0.0.1:0"}, logs, logs) }()
	tg := &testGateway{client: newTestClient(t), file: file, logs: logs}
	tg.stop = sync.OnceFunc(func() {
		tg.client.CloseIdleConnections() // as startGateway does
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run() = %v, want nil; log:\n%s", err, logs)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("run() did not return 30s after its context ended")
		}
	})
	t.Cleanup(tg.stop)
	tg.url = "http://" + waitListening(t, logs)
	return tg
}

// answer is an HTTP answer, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// errorBody decodes the gateway's error object.
func (a answer) errorBody(t *testing.T) apiError {
	t.Helper()
	var e struct {
		Error apiError `json:"error"`
	}
	require.NoError(t, json.Unmarshal(a.body, &e), "error body %s", a.body)
	return e.Error
}

// do sends a request with the given token ("" for none) and headers.
func (tg *testGateway) do(t *testing.T, method, path, token, body string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, tg.url+path, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := tg.client.Do(req)
	require.NoError(t, err, "%s %s", method, path)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// process POSTs an envelope to a service's process route.
func (tg *testGateway) process(t *testing.T, service, token, body string) answer {
	t.Helper()
	return tg.do(t, http.MethodPost, "/api/v1/services/"+service+"/process", token, body)
}

// payment returns a valid payment envelope with id.
func payment(id string) string {
	return `{"id":"` + id + `","user_id":"user_123","data":{"amount":100.50,"currency":"INR"}}`
}

// dialStream opens /ws with token and returns the connection and the first
// (hello) event.
func (tg *testGateway) dialStream(t *testing.T, token string) *websocket.Conn {
	t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	c, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(tg.url, "http")+"/ws",
		&websocket.DialOptions{HTTPHeader: h, HTTPClient: tg.client})
	require.NoError(t, err, "Dial(/ws)")
	t.Cleanup(func() { c.CloseNow() })
	hello := readEvent(t, c)
	require.Equal(t, "hello", hello.Type, "first event")
	return c
}

// streamEvent is an event as a client reads it.
type streamEvent struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

func readEvent(t *testing.T, c *websocket.Conn) streamEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, msg, err := c.Read(ctx)
	require.NoError(t, err, "reading the stream")
	var ev streamEvent
	require.NoError(t, json.Unmarshal(msg, &ev), "event %s", msg)
	return ev
}

// waitEvent reads the stream until an event of typ for which match reports
// true arrives.
func waitEvent(t *testing.T, c *websocket.Conn, typ string, match func(json.RawMessage) bool) json.RawMessage {
	t.Helper()
	for range 100_000 {
		ev := readEvent(t, c)
		if ev.Type == typ && match(ev.Data) {
			return ev.Data
		}
	}
	t.Fatalf("no %s event matched", typ)
	return nil
}

// isJSON reports whether b is one JSON value.
func isJSON(b []byte) bool {
	return json.Valid(bytes.TrimSpace(b))
}

// waitInstance waits until the balancer of service reports an instance state
// for which ok is true, woken by the balancer's events rather than by
// polling.
func waitInstance(t *testing.T, s *serviceEntry, instance string, ok func(st instanceStatus) bool) {
	t.Helper()
	changed := make(chan struct{}, 1)
	cancel := s.pool.Subscribe(func(balance.Event) {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	defer cancel()
	timeout := time.NewTimer(20 * time.Second)
	defer timeout.Stop()
	for {
		for _, st := range s.instanceStatuses() {
			if st.Name == instance && ok(st) {
				return
			}
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("instance %s never reached the awaited state: %+v", instance, s.instanceStatuses())
		}
	}
}

// newTestClient returns an HTTP client whose idle connections are closed
// when the test ends.
func newTestClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// syncBuffer is a log destination that tests can read while the gateway
// writes to it, and wait on.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{} // closed and replaced on every write
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.written != nil {
		close(b.written)
		b.written = nil
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// wait returns the contents and a channel closed on the next write.
func (b *syncBuffer) wait() (string, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.written == nil {
		b.written = make(chan struct{})
	}
	return b.buf.String(), b.written
}

var listeningRE = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

// waitListening waits for the gateway's "listening" log line and returns the
// address in it.
func waitListening(t *testing.T, logs *syncBuffer) string {
	t.Helper()
	return waitLog(t, logs, 0, listeningRE)[1]
}

// waitLog waits, woken by each write, until the log after its first from
// bytes matches re, and returns the match.
func waitLog(t *testing.T, logs *syncBuffer, from int, re *regexp.Regexp) []string {
	t.Helper()
	timeout := time.NewTimer(60 * time.Second)
	defer timeout.Stop()
	for {
		s, next := logs.wait()
		if m := re.FindStringSubmatch(s[from:]); m != nil {
			return m
		}
		select {
		case <-next:
		case <-timeout.C:
			t.Fatalf("the log never matched %s; log:\n%s", re, s)
		}
	}
}
