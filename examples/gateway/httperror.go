package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"

	"github.com/proxykit/proxy"
)

// Error codes of the gateway's own that have no proxy.Outcome. The others
// are proxy.Outcome names: invalid, unauthenticated, forbidden,
// rate_limited, circuit_open, overloaded, no_healthy_instance, timeout,
// canceled.
const (
	codeUnknownService   = "unknown_service"
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
	codeUpgradeRequired  = "upgrade_required"
	codeBodyTooLarge     = "body_too_large"
	codeUnsupportedMedia = "unsupported_media_type"
	codeBackendError     = "backend_error"
	codeInternal         = "internal"
	codeNotReady         = "not_ready"
	codeUnavailable      = "unavailable"
	codeAuditUnavailable = "audit_unavailable"
	codeInvalidConfig    = "invalid_config"
)

// statusClientClosedRequest is the conventional (nginx) status for a call
// whose client went away before the answer; nobody reads it.
const statusClientClosedRequest = 499

// An apiError is an error answer: its HTTP status and the JSON body
// {"error":{"code","message","field"}}.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// RetryAfter, when above zero, is sent as Retry-After in whole seconds.
	RetryAfter float64 `json:"retry_after_seconds,omitempty"`
	// Challenge, when set, is sent as WWW-Authenticate.
	Challenge string `json:"-"`
}

// errorFor maps an error from a service stack to its answer. Backend
// failures get a generic message: their detail goes to the log, not to the
// caller.
func errorFor(service string, err error) *apiError {
	var ae *proxy.AuditError
	if errors.As(err, &ae) {
		return &apiError{Status: http.StatusServiceUnavailable, Code: codeAuditUnavailable,
			Message: "the call could not be recorded in the audit log", RetryAfter: 1}
	}
	o := proxy.OutcomeOf(err)
	e := &apiError{Code: o.String()}
	switch o {
	case proxy.OutcomeInvalid:
		e.Status = http.StatusBadRequest
		e.Message = "invalid request"
		var ire *proxy.InvalidRequestError
		if errors.As(err, &ire) {
			e.Field = ire.Field
			e.Message = ire.Field + ": " + ire.Reason
		}
	case proxy.OutcomeUnauthenticated:
		e.Status = http.StatusUnauthorized
		e.Message = "authentication required"
		e.Challenge = bearerChallenge("", "")
	case proxy.OutcomeForbidden:
		e.Status = http.StatusForbidden
		e.Message = "not allowed"
	case proxy.OutcomeRateLimited:
		e.Status = http.StatusTooManyRequests
		e.Message = "rate limited; retry later"
		var rle *proxy.RateLimitError
		if errors.As(err, &rle) && rle.RetryAfter > 0 {
			e.RetryAfter = rle.RetryAfter.Seconds()
		}
		// Retry-After is whole seconds: round up, and never say 0.
		e.RetryAfter = max(1, math.Ceil(e.RetryAfter))
	case proxy.OutcomeCircuitOpen:
		e.Status = http.StatusServiceUnavailable
		e.Message = service + " is failing; its circuit breaker is open"
	case proxy.OutcomeOverloaded:
		e.Status = http.StatusServiceUnavailable
		e.Message = service + " is overloaded; retry later"
		e.RetryAfter = 1
	case proxy.OutcomeNoHealthyInstance:
		e.Status = http.StatusServiceUnavailable
		e.Message = service + " has no healthy instance"
	case proxy.OutcomeTimeout:
		e.Status = http.StatusGatewayTimeout
		e.Message = service + " did not answer in time"
	case proxy.OutcomeCanceled:
		e.Status = statusClientClosedRequest
		e.Message = "the request was canceled"
	default:
		e.Status = http.StatusBadGateway
		e.Code = codeBackendError
		e.Message = service + " failed"
	}
	return e
}

// bearerChallenge is a WWW-Authenticate value for the Bearer scheme (RFC
// 6750, section 3), with an error code when credentials were sent.
func bearerChallenge(code, desc string) string {
	v := `Bearer realm="proxy"`
	if code != "" {
		v += `, error="` + code + `"`
	}
	if desc != "" {
		v += `, error_description="` + desc + `"`
	}
	return v
}

// writeError sends e as JSON.
func writeError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	if e.Challenge != "" {
		h.Set("WWW-Authenticate", e.Challenge)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64(math.Ceil(e.RetryAfter)), 10))
	}
	h["Cache-Control"] = valueNoStore
	writeJSON(w, e.Status, struct {
		Error *apiError `json:"error"`
	}{e})
}

// Header values that many answers carry, each shared by all of them rather
// than allocated for each. Sharing is safe because nothing changes a header
// value in place: Header.Set replaces the slice, and Header.Add appends to
// a slice whose capacity is full, which copies it.
var (
	valueJSON           = []string{"application/json"}
	valueNosniff        = []string{"nosniff"}
	valueNoStore        = []string{"no-store"}
	valueAcceptEncoding = []string{"Accept-Encoding"}
)

// jsonBuffers holds the buffers answers are encoded into: the
// ResponseWriter copies what it is given, so a buffer can serve the next
// answer.
var jsonBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer bounds the buffers jsonBuffers keeps, so that one large
// answer (the stats of many services) does not stay in memory.
const maxPooledBuffer = 64 << 10

// writeJSON sends v as a JSON answer with status: what json.Marshal makes
// of v, and a newline.
func writeJSON(w http.ResponseWriter, status int, v any) {
	buf := jsonBuffers.Get().(*bytes.Buffer)
	defer putBuffer(buf)
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		// Only the gateway's own types and validated JSON are written
		// here; failing to encode them is a bug, answered as one.
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internal","message":"internal error"}}` + "\n")
		status = http.StatusInternalServerError
	}
	sendJSON(w, status, buf.Bytes())
}

// sendJSON sends body, JSON and its newline, with status.
func sendJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = valueJSON
	h["X-Content-Type-Options"] = valueNosniff
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// putBuffer empties buf and returns it to jsonBuffers, unless it has grown
// too large to keep.
func putBuffer(buf *bytes.Buffer) {
	if buf.Cap() > maxPooledBuffer {
		return
	}
	buf.Reset()
	jsonBuffers.Put(buf)
}
