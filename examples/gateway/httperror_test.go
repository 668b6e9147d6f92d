package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxykit/proxy"
)

// TestErrorFor maps the stack's errors to the answers of DESIGN.md's table:
// the status, the stable code, Retry-After in whole seconds rounded up
// (never 0) where there is one, and no backend detail in the message.
func TestErrorFor(t *testing.T) {
	detail := errors.New("db password=hunter2 rejected")
	for _, tc := range []struct {
		name           string
		err            error
		wantStatus     int
		wantCode       string
		wantRetryAfter string
	}{
		{"invalid", &proxy.InvalidRequestError{Field: "data.amount", Reason: "must be more than 0"}, 400, "invalid", ""},
		{"rate limited, 1.5s", &proxy.RateLimitError{Key: "u", RetryAfter: 1500 * time.Millisecond}, 429, "rate_limited", "2"},
		{"rate limited, 100ms", &proxy.RateLimitError{Key: "u", RetryAfter: 100 * time.Millisecond}, 429, "rate_limited", "1"},
		{"rate limited, unknown wait", fmt.Errorf("limiter: %w", proxy.ErrRateLimited), 429, "rate_limited", "1"},
		{"circuit open", fmt.Errorf("%w: %w", proxy.ErrCircuitOpen, detail), 503, "circuit_open", ""},
		{"overloaded", proxy.ErrOverloaded, 503, "overloaded", "1"},
		{"no healthy instance", proxy.ErrNoHealthyInstance, 503, "no_healthy_instance", ""},
		{"deadline", fmt.Errorf("attempt 2: %w", context.DeadlineExceeded), 504, "timeout", ""},
		{"backend failed", fmt.Errorf("payment-1: %w", detail), 502, codeBackendError, ""},
		{"audit failed", &proxy.AuditError{Err: detail}, 503, codeAuditUnavailable, "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := errorFor("payment", tc.err)
			w := httptest.NewRecorder()
			writeError(w, e)
			if w.Code != tc.wantStatus {
				t.Fatalf("errorFor(%v) status = %d, want %d", tc.err, w.Code, tc.wantStatus)
			}
			var body struct {
				Error apiError `json:"error"`
			}
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), "body %s", w.Body)
			assert.Equal(t, tc.wantCode, body.Error.Code, "errorFor(%v) code", tc.err)
			assert.Equal(t, tc.wantRetryAfter, w.Header().Get("Retry-After"), "errorFor(%v) Retry-After", tc.err)
			assert.NotContains(t, body.Error.Message, "hunter2", "errorFor(%v) message", tc.err)
			assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
		})
	}
	if e := errorFor("payment", &proxy.InvalidRequestError{Field: "data.amount", Reason: "must be more than 0"}); e.Field != "data.amount" || !strings.Contains(e.Message, "must be more than 0") {
		t.Errorf("errorFor(invalid data.amount) = %+v, want the field and the reason", e)
	}
	if e := errorFor("payment", context.Canceled); e.Status == http.StatusInternalServerError || e.Status < 400 {
		t.Errorf("errorFor(context.Canceled) status = %d, want a 4xx", e.Status)
	}
}
