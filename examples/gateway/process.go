package main

import (
	"cmp"
	"context"
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

	start := time.Now()
	resp, err := s.svc.Process(ctx, req)
	elapsed := time.Since(start)
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
		g.publishRequest(ev)
		writeError(w, e)
		return
	}
	ev.Instance, ev.Cached = resp.Instance, resp.Cached
	g.publishRequest(ev)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

// publishRequest puts a request summary on the event stream.
func (g *gateway) publishRequest(ev requestEvent) {
	if g.hub.active() {
		g.hub.publish(event{Type: "request", Time: time.Now().UTC(), Data: ev})
	}
}
