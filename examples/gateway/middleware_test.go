package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestJSONFallbacks checks the answers to what the mux does not route: its
// 404, 405 and clean-path redirects become JSON with the mux's status and
// Allow or Location header, while every routed call's answer, a handler's
// own 404 or the mux's redirect to a pattern's trailing slash included,
// passes through untouched.
func TestJSONFallbacks(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /only-get", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("GET /dir/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "dir") })
	mux.HandleFunc("GET /own404", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "mine", http.StatusNotFound) })
	h := withJSONFallbacks(mux)
	jsonHeader := func(kv ...string) http.Header {
		hdr := http.Header{"Content-Type": {"application/json"}, "X-Content-Type-Options": {"nosniff"}}
		for i := 0; i+1 < len(kv); i += 2 {
			hdr.Set(kv[i], kv[i+1])
		}
		return hdr
	}
	tests := []struct {
		method, target string
		wantStatus     int
		wantHeader     http.Header
		wantBody       string
	}{
		{method: "GET", target: "/only-get", wantStatus: http.StatusOK,
			wantHeader: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, wantBody: "ok"},
		{method: "GET", target: "/nope", wantStatus: http.StatusNotFound,
			wantHeader: jsonHeader("Cache-Control", "no-store"),
			wantBody:   `{"error":{"code":"not_found","message":"no such route"}}` + "\n"},
		{method: "HEAD", target: "/nope", wantStatus: http.StatusNotFound,
			wantHeader: jsonHeader("Cache-Control", "no-store"),
			wantBody:   `{"error":{"code":"not_found","message":"no such route"}}` + "\n"},
		{method: "POST", target: "/only-get", wantStatus: http.StatusMethodNotAllowed,
			wantHeader: jsonHeader("Cache-Control", "no-store", "Allow", "GET, HEAD"),
			wantBody:   `{"error":{"code":"method_not_allowed","message":"POST is not allowed here; allowed: GET, HEAD"}}` + "\n"},
		{method: "POST", target: "/dir", wantStatus: http.StatusMethodNotAllowed,
			wantHeader: jsonHeader("Cache-Control", "no-store", "Allow", "GET, HEAD"),
			wantBody:   `{"error":{"code":"method_not_allowed","message":"POST is not allowed here; allowed: GET, HEAD"}}` + "\n"},
		{method: "GET", target: "/x//y", wantStatus: http.StatusTemporaryRedirect,
			wantHeader: jsonHeader("Location", "/x/y"), wantBody: `{"location":"/x/y"}` + "\n"},
		{method: "GET", target: "/only-get/../nope", wantStatus: http.StatusTemporaryRedirect,
			wantHeader: jsonHeader("Location", "/nope"), wantBody: `{"location":"/nope"}` + "\n"},
		{method: "GET", target: "*", wantStatus: http.StatusTemporaryRedirect,
			wantHeader: jsonHeader("Location", "/%2A"), wantBody: `{"location":"/%2A"}` + "\n"},
		{method: "GET", target: "/dir", wantStatus: http.StatusTemporaryRedirect,
			wantHeader: http.Header{"Content-Type": {"text/html; charset=utf-8"}, "Location": {"/dir/"}},
			wantBody:   `<a href="/dir/">Temporary Redirect</a>.` + "\n\n"},
		{method: "GET", target: "/own404", wantStatus: http.StatusNotFound,
			wantHeader: http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "X-Content-Type-Options": {"nosniff"}},
			wantBody:   "mine\n"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			var r *http.Request
			if tt.target == "*" {
				r = httptest.NewRequest(tt.method, "/", nil)
				r.RequestURI, r.URL.Path = "*", "*"
			} else {
				r = httptest.NewRequest(tt.method, tt.target, nil)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			assert.Equal(t, tt.wantStatus, w.Code, "%s %s status", tt.method, tt.target)
			assert.Equal(t, tt.wantHeader, w.Header(), "%s %s header", tt.method, tt.target)
			assert.Equal(t, tt.wantBody, w.Body.String(), "%s %s body", tt.method, tt.target)
		})
	}
}

// TestNewRequestID checks that fresh request ids take the form of
// crypto/rand.Text's, and differ.
func TestNewRequestID(t *testing.T) {
	form := regexp.MustCompile(`^[A-Z2-7]{26}$`)
	require.Regexp(t, form, rand.Text(), "the form of crypto/rand.Text")
	seen := map[string]bool{}
	for range 1000 {
		id := newRequestID()
		if !form.MatchString(id) || !isSafeID(id) {
			t.Fatalf("newRequestID() = %q, want 26 characters of A-Z and 2-7", id)
		}
		if seen[id] {
			t.Fatalf("newRequestID() = %q twice", id)
		}
		seen[id] = true
	}
}

// TestCallContext checks the call's context: its callInfo under
// callInfoKey, the request context's values and cancellation otherwise,
// passed on to the contexts derived from it.
func TestCallContext(t *testing.T) {
	type otherKey struct{}
	parent, cancel := context.WithCancel(context.WithValue(t.Context(), otherKey{}, "v"))
	cc := &callContext{Context: parent, info: callInfo{id: "req-1"}}
	child, cancelChild := context.WithTimeout(cc, time.Hour)
	defer cancelChild()
	assert.Same(t, &cc.info, info(child), "info(child)")
	assert.Equal(t, "req-1", info(child).id, "info(child).id")
	assert.Equal(t, "v", child.Value(otherKey{}), "child.Value(otherKey{})")
	assert.NoError(t, child.Err(), "child.Err() before cancel")
	cancel()
	<-child.Done()
	assert.ErrorIs(t, child.Err(), context.Canceled, "child.Err() after the request's context is canceled")
	assert.ErrorIs(t, cc.Err(), context.Canceled, "cc.Err()")
}
