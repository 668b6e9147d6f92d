package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/proxykit/proxy"
)

// metaRequestID is the metadata key of the call's X-Request-ID, which the
// gateway passes on to remote instances.
const metaRequestID = "gateway.request_id"

// requestEvent is the stream's summary of one process call.
type requestEvent struct {
	RequestID string  `json:"request_id"`
	TraceID   string  `json:"trace_id,omitempty"`
	Service   string  `json:"service"`
	Instance  string  `json:"instance,omitempty"`
	Principal string  `json:"principal"`
	Outcome   string  `json:"outcome"`
	Status    int     `json:"status"`
	Cached    bool    `json:"cached"`
	Millis    float64 `json:"duration_ms"`
}

// handleProcess serves POST /api/v1/services/{service}/process: it
// authenticates the caller (401), finds the service (404), checks the
// caller's role (403), reads the envelope strictly (413, 415, 400) and
// passes it through the service's stack, whose errors become their statuses.
//
// With tracing on, the call is a server span that continues the caller's
// trace (W3C traceparent); its trace id is then the call's MetaTraceID, in
// its log lines and audit record, and goes on to remote instances.
// Without, MetaTraceID is the request id.
func (g *gateway) handleProcess(w http.ResponseWriter, r *http.Request) {
	ci := info(r.Context())
	if g.shared.tracer != nil {
		ctx, span := g.startServerSpan(r)
		ci.setTraceID(span.SpanContext().TraceID().String())
		rec := &statusRecorder{ResponseWriter: w}
		defer func() { endServerSpan(span, rec.status) }()
		w, r = rec, r.WithContext(ctx)
	}
	s, who, ok := g.authorizedService(g.current(), w, r)
	if !ok {
		return
	}
	if !allowed(who, s.cfg.Roles) {
		writeError(w, &apiError{Status: http.StatusForbidden, Code: "forbidden",
			Message: "role " + strconv.Quote(who.Role) + " may not call " + s.name})
		return
	}
	env, aerr := readEnvelope(w, r, g.cfg.Server.MaxBodyBytes, g.cfg.Server.MaxJSONDepth)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	req := &proxy.Request{
		ID:      env.ID,
		UserID:  env.UserID,
		Data:    env.Data,
		Service: s.name,
		Metadata: map[string]string{
			proxy.MetaTraceID:    cmp.Or(ci.traceID, ci.id),
			metaRequestID:        ci.id,
			proxy.MetaClientAddr: r.RemoteAddr,
			proxy.MetaPrincipal:  who.Name,
			proxy.MetaRole:       who.Role,
		},
	}
	if key := r.Header.Get("Idempotency-Key"); isSafeID(key) {
		req.Metadata[proxy.MetaIdempotencyKey] = key
	}
	ctx := r.Context()
	// A gateway in front of this one says how long it will wait.
	// (Without the header there is nothing to parse, nor an error to allocate.)
	if h := r.Header.Get(timeoutHeader); h != "" {
		if ms, err := strconv.ParseInt(h, 10, 64); err == nil && ms > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(min(ms, 24*3600*1000))*time.Millisecond)
			defer cancel()
		}
	}

	// The stream shows the calls that start while someone watches it; only
	// they need timing here (Instrumented times every call for the metrics).
	watched := g.hub.active()
	var start time.Time
	if watched {
		start = time.Now()
	}
	resp, err := s.svc.Process(ctx, req)
	var elapsed time.Duration
	if watched {
		elapsed = time.Since(start)
	}
	ev := requestEvent{
		RequestID: ci.id, TraceID: ci.traceID, Service: s.name, Principal: who.Name,
		Outcome: proxy.OutcomeOf(err).String(), Status: http.StatusOK,
		Millis: float64(elapsed.Microseconds()) / 1000,
	}
	if err != nil {
		e := errorFor(s.name, err)
		ev.Status = e.Status
		if e.Status >= 500 {
			ci.logger().Warn("call failed", "service", s.name, "outcome", ev.Outcome, "err", err)
		}
		if watched {
			g.publishRequest(ev)
		}
		writeError(w, e)
		return
	}
	if watched {
		ev.Instance, ev.Cached = resp.Instance, resp.Cached
		g.publishRequest(ev)
	}
	w.Header()["Cache-Control"] = valueNoStore
	writeResponse(w, resp)
}

// writeResponse sends resp as a 200 JSON answer: what writeJSON sends,
// written by hand when appendResponse can.
func writeResponse(w http.ResponseWriter, resp *proxy.Response) {
	buf := jsonBuffers.Get().(*bytes.Buffer)
	defer putBuffer(buf)
	b, ok := appendResponse(buf.AvailableBuffer(), resp)
	if !ok {
		writeJSON(w, http.StatusOK, resp)
		return
	}
	buf.Write(b)
	sendJSON(w, http.StatusOK, buf.Bytes())
}

// appendResponse appends resp and a newline to b as json.Marshal and
// writeJSON write them, and reports whether it could without
// encoding/json: when resp's strings are printable ASCII that JSON needs
// not escape, and its data is valid JSON, compact and without the
// characters json.Marshal escapes for HTML.
func appendResponse(b []byte, resp *proxy.Response) ([]byte, bool) {
	if !plainJSONString(resp.RequestID) || !plainJSONString(resp.Service) ||
		!plainJSONString(resp.Instance) || !plainJSONData(resp.Data) {
		return b, false
	}
	b = append(b, `{"request_id":"`...)
	b = append(b, resp.RequestID...)
	b = append(b, `","service":"`...)
	b = append(b, resp.Service...)
	b = append(b, '"')
	if resp.Instance != "" {
		b = append(b, `,"instance":"`...)
		b = append(b, resp.Instance...)
		b = append(b, '"')
	}
	if len(resp.Data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, resp.Data...)
	}
	b = append(b, `,"cached":`...)
	b = strconv.AppendBool(b, resp.Cached)
	return append(b, "}\n"...), true
}

// plainJSONString reports whether json.Marshal writes s as it is, between
// quotes: printable ASCII without quotes, backslashes, or the characters it
// escapes for HTML (<, >, &).
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// plainJSONData reports whether json.Marshal writes data, a
// json.RawMessage, as it is: valid JSON without white space (which it
// compacts) and without the characters it escapes for HTML (<, >, &, and
// the line and paragraph separators U+2028 and U+2029). Empty data is
// left out of the answer, and so is plain too.
func plainJSONData(data []byte) bool {
	if len(data) == 0 {
		return true
	}
	for i, c := range data {
		switch c {
		case ' ', '\t', '\n', '\r', '<', '>', '&':
			return false
		case 0xE2: // U+2028 and U+2029 are E2 80 A8 and E2 80 A9
			if i+2 < len(data) && data[i+1] == 0x80 && (data[i+2] == 0xA8 || data[i+2] == 0xA9) {
				return false
			}
		}
	}
	return json.Valid(data)
}

// publishRequest puts a request summary on the event stream.
func (g *gateway) publishRequest(ev requestEvent) {
	if g.hub.active() {
		g.hub.publish(event{Type: "request", Time: time.Now().UTC(), Data: ev})
	}
}
