package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// requestIDHeader carries the id that ties a call's log lines, audit record
// and answer together.
const requestIDHeader = "X-Request-ID"

// requestIDKey is requestIDHeader in the canonical form of http.Header
// keys, for reading and setting the header without canonicalizing its name
// (which allocates) on every call.
var requestIDKey = http.CanonicalHeaderKey(requestIDHeader)

// newRequestID returns a fresh request id in the form crypto/rand.Text
// gives: 26 characters of the standard base32 alphabet, 130 random bits.
// They come from math/rand/v2, whose generator the runtime seeds from the
// operating system, as a request id must be unique but need not be secret:
// a caller may choose its own.
func newRequestID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	var b [26]byte
	var bits uint64
	for i := range b {
		if i%12 == 0 {
			bits = rand.Uint64()
		}
		b[i] = alphabet[bits&31]
		bits >>= 5
	}
	return string(b[:])
}

// safeID is what a caller's X-Request-ID or Idempotency-Key must look like
// to be kept (a request id that does not is replaced by a fresh one, a key
// is dropped), so that a header cannot forge log lines or grow without
// bound. isSafeID is the same check, without the regexp engine, for every
// call.
var safeID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// isSafeID reports whether s matches safeID, without the regexp engine.
func isSafeID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// httpKey names one counter of gateway_http_requests_total.
type httpKey struct {
	route  string
	status int
}

// countHTTP counts one answer of route with status. The counters are
// looked up once per route and status (both come from a bounded set: the
// mux's patterns and three-digit codes) and then reused.
func (g *gateway) countHTTP(route string, status int) {
	k := httpKey{route, status}
	if c, ok := g.httpCounters.Load(k); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c, _ := g.httpCounters.LoadOrStore(k, g.httpRequests.WithLabelValues(route, strconv.Itoa(status)))
	c.(prometheus.Counter).Inc()
}

// callInfo is what the middleware and the handler of one call share. Only
// the goroutine serving the call touches it.
type callInfo struct {
	id        string
	traceID   string // the W3C trace id, when tracing is on
	base      *slog.Logger
	log       *slog.Logger // base with the request and trace ids, made on first use
	principal string
	service   string
}

// logger returns the call's logger, which puts the request id, and the
// trace id when there is one, in every line.
func (ci *callInfo) logger() *slog.Logger {
	if ci.log == nil {
		ci.log = ci.base.With("request_id", ci.id)
		if ci.traceID != "" {
			ci.log = ci.log.With("trace_id", ci.traceID)
		}
	}
	return ci.log
}

// setTraceID records the call's trace id, for its log lines.
func (ci *callInfo) setTraceID(id string) {
	ci.traceID = id
	ci.log = nil
}

type callInfoKey struct{}

// A callContext is the context of one call: the request's, extended with
// the call's callInfo (its value for callInfoKey), which it holds with the
// value of the answer's X-Request-ID header, so that the three take one
// allocation. Like any context whose Done and Value are its parent's, it
// lets a context derived from it join the cancellation of the request's.
type callContext struct {
	context.Context
	info     callInfo
	idHeader [1]string
}

// Value returns the call's callInfo for callInfoKey, and the request
// context's value for any other key.
func (c *callContext) Value(key any) any {
	if key == (callInfoKey{}) {
		return &c.info
	}
	return c.Context.Value(key)
}

// info returns the callInfo of the call whose context is ctx.
func info(ctx context.Context) *callInfo {
	if ci, ok := ctx.Value(callInfoKey{}).(*callInfo); ok {
		return ci
	}
	return &callInfo{base: slog.New(slog.DiscardHandler)}
}

// statusRecorder remembers the status and size of an answer, for the access
// log and metrics. Unwrap lets http.ResponseController and the WebSocket
// upgrade reach the connection underneath.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// withCallInfo gives every call a request id (the caller's, when safe, or a
// new one), echoes it in the answer, puts a logger carrying it in the
// context, turns a panic into a 500 and a log line, and logs one access
// line per call.
func (g *gateway) withCallInfo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.inflight.Add(1)
		defer g.inflight.Done()
		start := time.Now()
		var id string
		if v := r.Header[requestIDKey]; len(v) > 0 {
			id = v[0]
		}
		if !isSafeID(id) {
			id = newRequestID()
		}
		cc := &callContext{Context: r.Context(), info: callInfo{id: id, base: g.log}, idHeader: [1]string{id}}
		w.Header()[requestIDKey] = cc.idHeader[:]
		ci := &cc.info
		r = r.WithContext(cc)
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				ci.logger().Error("handler panic", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if rec.status == 0 {
					writeError(rec, &apiError{Status: http.StatusInternalServerError, Code: codeInternal, Message: "internal error"})
				}
			}
			pattern := r.Pattern
			if pattern == "" {
				pattern = "unmatched"
			}
			if rec.status == 0 {
				rec.status = http.StatusOK
			}
			g.countHTTP(pattern, rec.status)
			level := slog.LevelInfo
			if rec.status >= 500 {
				level = slog.LevelWarn
			}
			if g.log.Enabled(r.Context(), level) {
				attrs := []slog.Attr{slog.String("request_id", ci.id),
					slog.String("method", clean(r.Method, 32)), slog.String("path", clean(r.URL.Path, 200)),
					slog.String("route", pattern), slog.Int("status", rec.status), slog.Int64("bytes", rec.bytes),
					slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
					slog.String("principal", ci.principal), slog.String("service", ci.service),
					slog.String("remote", r.RemoteAddr)}
				if ci.traceID != "" {
					attrs = append(attrs, slog.String("trace_id", ci.traceID))
				}
				g.log.LogAttrs(r.Context(), level, "http", attrs...)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// withCORS answers preflight requests and adds CORS headers for the origins
// the configuration allows. With none configured it adds nothing, and
// browsers keep pages of other origins out.
func (g *gateway) withCORS(next http.Handler) http.Handler {
	c := g.cfg.Server.CORS
	anyOrigin := slices.Contains(c.AllowedOrigins, "*")
	allowHeaders := strings.Join(c.AllowedHeaders, ", ")
	maxAge := strconv.Itoa(int(c.MaxAge / time.Second))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		ok := origin != "" && (anyOrigin || slices.Contains(c.AllowedOrigins, origin))
		h := w.Header()
		if ok {
			if anyOrigin {
				h.Set("Access-Control-Allow-Origin", "*")
			} else {
				h.Set("Access-Control-Allow-Origin", origin)
			}
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", "X-Request-ID, Retry-After, WWW-Authenticate")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if ok {
				h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
				h.Set("Access-Control-Allow-Headers", allowHeaders)
				h.Set("Access-Control-Max-Age", maxAge)
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// withJSONFallbacks answers what the mux does not route, a 404 or a 405
// (or a redirect to the clean form of a path that matches nothing), with
// the gateway's JSON error instead of the mux's plain text, keeping the
// mux's Allow or Location header. It routes once: the mux itself, through
// a fallbackWriter that takes over the answer when the mux found no
// pattern.
func withJSONFallbacks(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fw := &fallbackWriter{ResponseWriter: w, r: r}
		if r.RequestURI == "*" {
			// The mux answers a bare 400 to these before routing; the
			// gateway has always answered them as the mux routes them, a
			// redirect.
			h, _ := mux.Handler(r)
			h.ServeHTTP(fw, r)
			return
		}
		mux.ServeHTTP(fw, r)
	})
}

// A fallbackWriter passes a routed call's answer through untouched. When
// the mux routed nothing (it sets r.Pattern before calling the handler, and
// leaves it empty for its own 404, 405 and redirect handlers), it answers
// in JSON as soon as that handler sends its status, and drops the plain
// text that follows.
type fallbackWriter struct {
	http.ResponseWriter
	r        *http.Request
	answered bool // the JSON answer is sent; the mux's own body is dropped
}

func (f *fallbackWriter) WriteHeader(code int) {
	switch {
	case f.answered:
	case f.r.Pattern != "":
		f.ResponseWriter.WriteHeader(code)
	default:
		f.answered = true
		f.answer(code)
	}
}

func (f *fallbackWriter) Write(b []byte) (int, error) {
	if !f.answered && f.r.Pattern == "" {
		f.WriteHeader(http.StatusOK)
	}
	if f.answered {
		return len(b), nil
	}
	return f.ResponseWriter.Write(b)
}

func (f *fallbackWriter) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// answer sends the JSON form of the mux's fallback answer with status,
// whose headers (Allow, Location) the mux has set.
func (f *fallbackWriter) answer(status int) {
	w, r := f.ResponseWriter, f.r
	switch status {
	case http.StatusMethodNotAllowed:
		allow := w.Header().Get("Allow")
		writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Code: codeMethodNotAllowed,
			Message: clean(r.Method, 32) + " is not allowed here; allowed: " + allow})
	case http.StatusNotFound:
		writeError(w, &apiError{Status: http.StatusNotFound, Code: codeNotFound, Message: "no such route"})
	default:
		// A redirect to the clean form of the path ("//" or "/./" in
		// it): the mux's status and Location, with a JSON body.
		writeJSON(w, status, map[string]string{"location": w.Header().Get("Location")})
	}
}
