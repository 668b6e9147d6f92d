package dashboard_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/proxykit/proxy/examples/gateway/dashboard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// teapot stands in for the caller's not-found handler.
var teapot = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusTeapot)
})

func serve(t *testing.T, h http.Handler, method, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandler(t *testing.T) {
	h := dashboard.Handler(teapot)
	tests := []struct {
		method, path string
		wantStatus   int
		wantType     string
		wantBody     string
	}{
		{method: "GET", path: "/", wantStatus: 200, wantType: "text/html; charset=utf-8", wantBody: "<!doctype html>"},
		{method: "GET", path: "/index.html", wantStatus: 200, wantType: "text/html; charset=utf-8", wantBody: "<!doctype html>"},
		{method: "GET", path: "/app.js", wantStatus: 200, wantType: "text/javascript; charset=utf-8", wantBody: "'use strict';"},
		{method: "GET", path: "/style.css", wantStatus: 200, wantType: "text/css; charset=utf-8", wantBody: ":root {"},
		{method: "HEAD", path: "/app.js", wantStatus: 200, wantType: "text/javascript; charset=utf-8"},
		{method: "GET", path: "/dashboard.go", wantStatus: http.StatusTeapot},
		{method: "GET", path: "/app.js/", wantStatus: http.StatusTeapot},
		{method: "POST", path: "/", wantStatus: http.StatusTeapot},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			w := serve(t, h, tt.method, tt.path)
			require.Equal(t, tt.wantStatus, w.Code, "%s %s status", tt.method, tt.path)
			if tt.wantStatus != http.StatusOK {
				return
			}
			hdr := w.Header()
			assert.Equal(t, tt.wantType, hdr.Get("Content-Type"), "Content-Type")
			assert.Equal(t, "no-cache", hdr.Get("Cache-Control"), "Cache-Control")
			assert.Equal(t, "nosniff", hdr.Get("X-Content-Type-Options"), "X-Content-Type-Options")
			assert.Contains(t, hdr.Get("Content-Security-Policy"), "script-src 'self'", "Content-Security-Policy")
			assert.Contains(t, hdr.Get("Content-Security-Policy"), "frame-ancestors 'none'", "Content-Security-Policy")
			assert.Regexp(t, `^"[A-Za-z0-9_-]{24}"$`, hdr.Get("ETag"), "ETag")
			if tt.method == http.MethodHead {
				assert.Empty(t, w.Body.String(), "HEAD body")
			} else {
				assert.Contains(t, w.Body.String(), tt.wantBody, "body")
			}
		})
	}
}

func TestHandlerRevalidation(t *testing.T) {
	h := dashboard.Handler(teapot)
	first := serve(t, h, "GET", "/app.js")
	etag := first.Header().Get("ETag")
	require.NotEmpty(t, etag, "ETag")
	assert.NotEqual(t, etag, serve(t, h, "GET", "/style.css").Header().Get("ETag"), "files share an ETag")

	if got := serve(t, h, "GET", "/app.js", "If-None-Match", etag).Code; got != http.StatusNotModified {
		t.Errorf("GET /app.js with its ETag = %d, want %d", got, http.StatusNotModified)
	}
	if got := serve(t, h, "GET", "/app.js", "If-None-Match", `"stale"`).Code; got != http.StatusOK {
		t.Errorf("GET /app.js with another ETag = %d, want %d", got, http.StatusOK)
	}
}

func TestHandlerNilNotFound(t *testing.T) {
	assert.PanicsWithValue(t, "dashboard: nil notFound handler", func() { dashboard.Handler(nil) })
}

// TestPageParts checks that the page, its script and its style sheet fit
// together: every file the page loads is served, every element id and card
// field the script looks up is in the page, and the page runs no inline
// script, which the Content Security Policy would block.
func TestPageParts(t *testing.T) {
	page := readFile(t, "index.html")
	script := readFile(t, "app.js")
	h := dashboard.Handler(teapot)

	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		if strings.HasPrefix(m[1], "data:") {
			continue
		}
		if got := serve(t, h, "GET", "/"+m[1]).Code; got != http.StatusOK {
			t.Errorf("index.html loads %s: GET = %d, want 200", m[1], got)
		}
	}
	if regexp.MustCompile(`<script>|<script [^>]*>[^<]|\son[a-z]+="`).MatchString(page) {
		t.Error("index.html has inline script, which the Content Security Policy blocks")
	}
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(`\sid="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		ids[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`\$\('([^']+)'\)`).FindAllStringSubmatch(script, -1) {
		if !ids[m[1]] {
			t.Errorf("app.js looks up #%s, which index.html lacks", m[1])
		}
	}
	fields := map[string]bool{}
	for _, m := range regexp.MustCompile(`data-field="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		fields[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`\bfields(?:\.([a-z0-9]+)|\['([a-z0-9-]+)'\])`).FindAllStringSubmatch(script, -1) {
		name := m[1] + m[2]
		if !fields[name] {
			t.Errorf("app.js uses the card field %q, which index.html lacks", name)
		}
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return string(b)
}
