package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/proxykit/proxy/audit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildGateway builds the gateway binary into dir, with the race detector
// when the tests have it: the packages are then already compiled, and the
// process is checked for races too.
func buildGateway(t *testing.T, dir string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	require.NoError(t, err, "the go tool, to build the gateway with")
	bin := filepath.Join(dir, "gateway")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command(goTool, append(args, ".")...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// TestSIGTERMUnderLoad runs the gateway binary, reloads its configuration
// with SIGHUP, loads it with slow payment calls, sends it SIGTERM, and
// checks the graceful shutdown: /readyz turns 503 while it drains, every
// call it accepted gets a complete answer, it exits 0, and its audit log
// verifies and holds one record per answered call.
func TestSIGTERMUnderLoad(t *testing.T) {
	dir := t.TempDir()
	bin := buildGateway(t, dir)
	auditLog := filepath.Join(dir, "audit.log")
	cfgFile := filepath.Join(dir, "gateway.yaml")
	config := `
server:
  addr: 127.0.0.1:0
  drain_delay: 1s
  drain_timeout: 10s
auth:
  anonymous_role: guest
audit:
  sink: file
  file: ` + auditLog + `
  fail_closed: true
  fields: [amount, currency]
log: {level: info}
services:
  payment:
    roles: [guest]
    timeout: 5s
    retry: {attempts: 2, initial_backoff: 1ms, max_backoff: 1ms}
    breaker: {consecutive_failures: 5}
    instances:
      - {name: payment-1, demo: payment, latency: 100ms, jitter: 50ms}
      - {name: payment-2, demo: payment, latency: 100ms, jitter: 50ms}
`
	require.NoError(t, os.WriteFile(cfgFile, []byte(config), 0o600))

	logs := &syncBuffer{}
	cmd := exec.Command(bin, "-config", cfgFile)
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	var exitErr error
	go func() {
		exitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	base := "http://" + waitListening(t, logs)

	// SIGHUP reloads the file: a service added is served at once, and a
	// file with a mistake is refused while the gateway goes on as it was.
	require.NoError(t, os.WriteFile(cfgFile, []byte(config+`
  inventory:
    roles: [guest]
    instances: [{name: inventory-1, demo: inventory}]
`), 0o600))
	mark := len(logs.String())
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	waitLog(t, logs, mark, regexp.MustCompile(`"msg":"configuration reloaded"`))
	reloadClient := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := reloadClient.Post(base+"/api/v1/services/inventory/process", "application/json",
		strings.NewReader(`{"id":"i1","user_id":"u","data":{"action":"stock","sku":"SKU-001"}}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the reloaded service")
	require.NoError(t, os.WriteFile(cfgFile, []byte(config+"  colour: blue\n"), 0o600))
	mark = len(logs.String())
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	waitLog(t, logs, mark, regexp.MustCompile(`"msg":"configuration reload failed; serving the previous one"`))

	// Every call on a connection of its own, so that a refused connection
	// is the only way a call can fail to be sent once the listener closes.
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	var (
		answered atomic.Int64
		refused  atomic.Int64
		started  = make(chan struct{})
		once     sync.Once
		mu       sync.Mutex
		failures []string
		wg       sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, fmt.Sprintf(format, args...))
	}
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				body := payment(fmt.Sprintf("w%d-%d", w, i))
				resp, err := client.Post(base+"/api/v1/services/payment/process", "application/json", strings.NewReader(body))
				if err != nil {
					// The listener has closed: the connection was refused,
					// or it was still in the kernel's accept queue and is
					// reset unread (EOF before any answer). Either way the
					// gateway never read the call, which the audit count
					// below confirms.
					if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
						refused.Add(1)
						return
					}
					fail("worker %d call %d: %v", w, i, err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				var out struct {
					RequestID string `json:"request_id"`
				}
				switch {
				case err != nil:
					fail("worker %d call %d: reading the answer: %v", w, i, err)
					return
				case resp.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil || out.RequestID != fmt.Sprintf("w%d-%d", w, i):
					fail("worker %d call %d: %d %s", w, i, resp.StatusCode, b)
					return
				}
				if answered.Add(1) == 32 {
					once.Do(func() { close(started) })
				}
			}
		})
	}
	select {
	case <-started:
	case <-time.After(60 * time.Second):
		t.Fatalf("the load never got going; log:\n%s", logs.String())
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))

	// While it drains, the gateway still answers, and says it is not ready
	// (for the drain delay: a loaded machine must get a call in by then).
	sawNotReady := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		resp, err := client.Get(base + "/readyz")
		if err != nil {
			break // the drain delay is over and the listener closed
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			sawNotReady = true
			break
		}
	}
	assert.True(t, sawNotReady, "/readyz never answered 503 while draining")

	wg.Wait()
	select {
	case <-exited:
		require.NoError(t, exitErr, "the gateway's exit; log:\n%s", logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the gateway did not exit after SIGTERM; log:\n%s", logs.String())
	}
	require.Empty(t, failures, "calls without a complete answer")
	assert.Equal(t, int64(16), refused.Load(), "each worker stops at its first call the gateway did not read")

	f, err := os.Open(auditLog)
	require.NoError(t, err)
	defer f.Close()
	head, err := audit.Verify(f)
	require.NoError(t, err, "audit.Verify")
	assert.Equal(t, uint64(answered.Load())+1, head.Seq, "one audit record per answered call, and the inventory call's")
	data, err := os.ReadFile(auditLog)
	require.NoError(t, err)
	assert.Equal(t, 1, bytes.Count(data, []byte(`"request_id":"w0-0"`)), "the first call's record")
	assert.Contains(t, logs.String(), `"msg":"gateway stopped"`)
}
