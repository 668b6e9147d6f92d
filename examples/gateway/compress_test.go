package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCompression asks for gzip: a large JSON answer comes gzip-encoded and
// decodes to the very answer sent to a client that did not ask; a small
// one and the WebSocket stream are not compressed.
func TestCompression(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env envelope
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"data": env.Data})
	}))
	t.Cleanup(backend.Close)
	tg := startGateway(t, strings.Replace(testServer, "max_body_bytes: 4096", "max_body_bytes: 65536", 1)+testAuth(true)+`
services:
  echo:
    roles: [guest, client]
    instances: [{name: echo-1, url: `+backend.URL+`}]
`)
	// A client that decodes nothing itself, so that it sees what is sent.
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	raw := &http.Client{Transport: tr}
	send := func(method, path, body string, gzipped bool) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, tg.url+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if gzipped {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		resp, err := raw.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, b
	}
	gunzip := func(b []byte) []byte {
		t.Helper()
		zr, err := gzip.NewReader(strings.NewReader(string(b)))
		require.NoError(t, err, "the body is gzip")
		out, err := io.ReadAll(zr)
		require.NoError(t, err)
		return out
	}

	var items []string
	for i := range 200 {
		items = append(items, fmt.Sprintf(`{"sku":"SKU-%03d","name":"item %d","quantity":%d}`, i, i, i%7))
	}
	large := `{"id":"big-1","user_id":"u","data":{"items":[` + strings.Join(items, ",") + `]}}`

	t.Run("large JSON answer", func(t *testing.T) {
		plainResp, plain := send(http.MethodPost, "/api/v1/services/echo/process", large, false)
		require.Equal(t, http.StatusOK, plainResp.StatusCode, "body %s", plain)
		assert.Empty(t, plainResp.Header.Get("Content-Encoding"), "not asked, not compressed")
		assert.Contains(t, plainResp.Header.Values("Vary"), "Accept-Encoding", "caches must still tell the two apart")
		require.Greater(t, len(plain), 4096)

		gzResp, body := send(http.MethodPost, "/api/v1/services/echo/process", large, true)
		require.Equal(t, http.StatusOK, gzResp.StatusCode)
		assert.Equal(t, "gzip", gzResp.Header.Get("Content-Encoding"))
		assert.Contains(t, gzResp.Header.Values("Vary"), "Accept-Encoding")
		assert.Equal(t, "application/json", gzResp.Header.Get("Content-Type"))
		assert.Less(t, len(body), len(plain)/2, "compressed size")
		assert.Equal(t, string(plain), string(gunzip(body)), "the same answer once decoded")
	})
	t.Run("metrics", func(t *testing.T) {
		resp, body := send(http.MethodGet, "/metrics", "", true)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
		assert.Contains(t, string(gunzip(body)), "gateway_http_requests_total{", "compressed once, not twice")
	})
	t.Run("small answer", func(t *testing.T) {
		resp, body := send(http.MethodGet, "/healthz", "", true)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Empty(t, resp.Header.Get("Content-Encoding"), "under min_size")
		assert.JSONEq(t, `{"status":"alive"}`, string(body))
	})
	t.Run("websocket stream", func(t *testing.T) {
		h := http.Header{}
		h.Set("Authorization", "Bearer "+clientToken)
		h.Set("Accept-Encoding", "gzip")
		c, resp, err := websocket.Dial(t.Context(), tg.wsURL(), &websocket.DialOptions{HTTPHeader: h, HTTPClient: raw})
		require.NoError(t, err, "the upgrade works for a client that accepts gzip")
		defer c.CloseNow()
		assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
		assert.Empty(t, resp.Header.Get("Content-Encoding"))
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		_, msg, err := c.Read(ctx)
		require.NoError(t, err)
		assert.Contains(t, string(msg), `"type":"hello"`, "plain JSON messages")
		c.Close(websocket.StatusNormalClosure, "")
	})
}

// TestMayAcceptGzip checks what lets a request bypass gzhttp: only an
// Accept-Encoding header that cannot name gzip.
func TestMayAcceptGzip(t *testing.T) {
	for _, tc := range []struct {
		ae   string
		want bool
	}{
		{"", false},
		{"identity", false},
		{"br, zstd", false},
		{"gzi", false},
		{"gzip", true},
		{"GZip;q=0.5", true},
		{"br, gzip;q=0", true}, // gzhttp decides that q=0 means no
		{"x-gzip", true},
	} {
		if got := mayAcceptGzip(tc.ae); got != tc.want {
			t.Errorf("mayAcceptGzip(%q) = %v, want %v", tc.ae, got, tc.want)
		}
	}
}
