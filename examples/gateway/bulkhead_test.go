package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBulkheadShedsLoad sends many concurrent calls to a slow instance
// behind a small bulkhead: the backend never has more calls in flight than
// the limit, the calls over it are shed after the bounded wait with 503
// overloaded and a Retry-After, and the admitted ones are served.
func TestBulkheadShedsLoad(t *testing.T) {
	const limit, calls = 3, 20
	var inflight, maxInflight atomic.Int64
	arrived := make(chan struct{}, calls)
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for m := maxInflight.Load(); n > m && !maxInflight.CompareAndSwap(m, n); m = maxInflight.Load() {
		}
		arrived <- struct{}{}
		<-release // slow: it answers when the test says so
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte(`{"data":{"ok":true}}`))
	}))
	t.Cleanup(backend.Close)
	releaseAll := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseAll) // before the backend closes, even on a failure

	tg := startGateway(t, testServer+testAuth(true)+`
services:
  slow:
    roles: [guest]
    timeout: 1m # the held calls wait for the shed ones, however loaded the machine
    bulkhead: {limit: `+fmt.Sprint(limit)+`, max_wait: 10ms}
    instances: [{name: slow-1, url: `+backend.URL+`}]
`)
	type result struct {
		status     int
		code       string
		retryAfter string
		err        error
	}
	results := make(chan result, calls)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	for i := range calls {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, tg.url+"/api/v1/services/slow/process",
				strings.NewReader(fmt.Sprintf(`{"id":"b%d","user_id":"u","data":{}}`, i)))
			if err != nil {
				results <- result{err: err}
				return
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := tg.client.Do(req)
			if err != nil {
				results <- result{err: err}
				return
			}
			defer resp.Body.Close()
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			results <- result{status: resp.StatusCode, code: body.Error.Code, retryAfter: resp.Header.Get("Retry-After"), err: err}
		})
	}
	timeout := time.NewTimer(60 * time.Second)
	defer timeout.Stop()
	next := func() result {
		t.Helper()
		select {
		case r := <-results:
			require.NoError(t, r.err)
			return r
		case <-timeout.C:
			t.Fatalf("no answer within 60s; backend in flight: %d", inflight.Load())
			return result{}
		}
	}

	// The backend holds the calls it gets, so every call past the limit
	// is shed once it has waited max_wait.
	for range calls - limit {
		r := next()
		assert.Equal(t, http.StatusServiceUnavailable, r.status, "a call over the limit")
		assert.Equal(t, "overloaded", r.code)
		assert.Equal(t, "1", r.retryAfter, "Retry-After")
	}
	for range limit {
		select {
		case <-arrived:
		case <-timeout.C:
			t.Fatalf("the admitted calls never reached the backend; in flight: %d", inflight.Load())
		}
	}
	releaseAll()
	for range limit {
		assert.Equal(t, http.StatusOK, next().status, "an admitted call is served")
	}
	assert.Equal(t, int64(limit), maxInflight.Load(), "most calls in flight at the backend at once")
	assert.Empty(t, arrived, "no call reached the backend besides the admitted ones")
	prom := string(tg.do(t, http.MethodGet, "/metrics", "", "").body)
	assert.Contains(t, prom, fmt.Sprintf(`proxy_requests_total{outcome="overloaded",service="slow"} %d`, calls-limit))
}
