package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/proxykit/proxy/tracing"
)

// processRoute is the name of the gateway's server span of a process call.
const processRoute = "POST /api/v1/services/{service}/process"

// TestTraceAcrossGateways sends calls through a front gateway to a back
// gateway, each with an in-memory span recorder, as two processes would
// each have their exporter: every call is one trace whose spans are parent
// and child across the two, retries and breaker rejections are on the
// service's span, and the trace id is in both gateways' log lines and audit
// records.
func TestTraceAcrossGateways(t *testing.T) {
	const traced = `
tracing: {exporter: log, sample_ratio: 1}
`
	withAudit := strings.Replace(testServer, "audit: {sink: off}", "audit: {sink: log}", 1) + testAuth(true) + traced
	backSpans, backLogs := tracetest.NewSpanRecorder(), &syncBuffer{}
	back := startGatewayLogging(t, withAudit+`
services:
  inventory:
    roles: [guest]
    instances: [{name: back-inventory-1, demo: inventory}]
`, backLogs, withSpanProcessor(backSpans))

	// flaky fails its first request, then passes the others on to the
	// back gateway; broken always fails.
	var flakyCalls atomic.Int64
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if flakyCalls.Add(1) == 1 {
			http.Error(w, "warming up", http.StatusInternalServerError)
			return
		}
		back.handler.ServeHTTP(w, r)
	}))
	t.Cleanup(flaky.Close)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	t.Cleanup(broken.Close)

	frontSpans, frontLogs := tracetest.NewSpanRecorder(), &syncBuffer{}
	backPath := "/api/v1/services/inventory/process"
	front := startGatewayLogging(t, withAudit+`
services:
  stock:
    roles: [guest]
    instances: [{name: stock-remote, url: `+back.url+backPath+`}]
  flaky:
    roles: [guest]
    retry: {attempts: 3, initial_backoff: 1ms, max_backoff: 1ms}
    instances: [{name: flaky-remote, url: `+flaky.URL+backPath+`}]
  broken:
    roles: [guest]
    breaker: {consecutive_failures: 1, open_timeout: 1h}
    instances: [{name: broken-remote, url: `+broken.URL+`}]
`, frontLogs, withSpanProcessor(frontSpans))

	const (
		traceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
		callerID = "00f067aa0ba902b7"
		stockReq = `{"id":"s1","user_id":"u","data":{"action":"stock","sku":"SKU-001"}}`
	)
	a := front.do(t, http.MethodPost, "/api/v1/services/stock/process", "", stockReq,
		"Traceparent", "00-"+traceID+"-"+callerID+"-01", "Tracestate", "congo=t61rcWkgMzE", requestIDHeader, "trace-test-1")
	require.Equal(t, http.StatusOK, a.status, "stock: %s", a.body)
	a = front.process(t, "flaky", "", stockReq)
	require.Equal(t, http.StatusOK, a.status, "flaky: %s", a.body)
	require.Equal(t, int64(2), flakyCalls.Load(), "flaky: one failure, one retry")
	a = front.process(t, "broken", "", stockReq)
	require.Equal(t, http.StatusBadGateway, a.status, "broken, first call: %s", a.body)
	a = front.process(t, "broken", "", stockReq)
	require.Equal(t, http.StatusServiceUnavailable, a.status, "broken, second call: %s", a.body)
	// Every span has ended once both gateways have shut down.
	front.stop()
	back.stop()
	fronts, backs := frontSpans.Ended(), backSpans.Ended()

	t.Run("one trace across the two gateways", func(t *testing.T) {
		in := func(spans []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
			return filterSpans(spans, func(s sdktrace.ReadOnlySpan) bool { return s.SpanContext().TraceID().String() == traceID })
		}
		f, b := in(fronts), in(backs)
		require.Len(t, f, 3, "front spans of the trace: %v", spanNames(f))
		require.Len(t, b, 2, "back spans of the trace: %v", spanNames(b))

		server := onlySpan(t, f, processRoute, trace.SpanKindServer)
		assert.Equal(t, callerID, server.Parent().SpanID().String(), "the front continues the caller's span")
		assert.True(t, server.Parent().IsRemote())
		assert.Contains(t, server.Attributes(), attribute.Int("http.response.status_code", http.StatusOK))
		service := onlySpan(t, f, "stock", trace.SpanKindInternal)
		assert.Equal(t, server.SpanContext().SpanID(), service.Parent().SpanID(), "the service span is the server span's child")
		assert.Contains(t, service.Attributes(), tracing.AttrOutcome.String("ok"))
		client := onlySpan(t, f, http.MethodPost, trace.SpanKindClient)
		assert.Equal(t, service.SpanContext().SpanID(), client.Parent().SpanID(), "the request to the remote is the service span's child")
		assert.Contains(t, client.Attributes(), tracing.AttrInstance.String("stock-remote"))

		backServer := onlySpan(t, b, processRoute, trace.SpanKindServer)
		assert.Equal(t, client.SpanContext().SpanID(), backServer.Parent().SpanID(), "the back gateway continues the front's request span")
		assert.True(t, backServer.Parent().IsRemote(), "across processes")
		assert.Equal(t, "congo=t61rcWkgMzE", backServer.SpanContext().TraceState().String(), "the caller's tracestate goes along")
		backService := onlySpan(t, b, "inventory", trace.SpanKindInternal)
		assert.Equal(t, backServer.SpanContext().SpanID(), backService.Parent().SpanID())
		assert.Contains(t, backService.Attributes(), tracing.AttrInstance.String("back-inventory-1"))
	})

	t.Run("a retry is on the service span, each attempt a child", func(t *testing.T) {
		service := onlySpan(t, fronts, "flaky", trace.SpanKindInternal)
		assert.Equal(t, []string{tracing.EventRetry}, eventNames(service))
		attempts := filterSpans(fronts, func(s sdktrace.ReadOnlySpan) bool {
			return s.Parent().SpanID() == service.SpanContext().SpanID()
		})
		require.Len(t, attempts, 2, "client spans under the flaky call")
		slices.SortFunc(attempts, func(x, y sdktrace.ReadOnlySpan) int { return x.StartTime().Compare(y.StartTime()) })
		assert.Equal(t, codes.Error, attempts[0].Status().Code, "the first attempt failed")
		assert.Contains(t, attempts[0].Attributes(), attribute.Int("http.response.status_code", http.StatusInternalServerError))
		assert.Equal(t, codes.Unset, attempts[1].Status().Code, "the retry succeeded")
		backServer := filterSpans(backs, func(s sdktrace.ReadOnlySpan) bool {
			return s.Parent().SpanID() == attempts[1].SpanContext().SpanID()
		})
		require.Len(t, backServer, 1, "the back gateway's span under the successful attempt")
		assert.Equal(t, service.SpanContext().TraceID(), backServer[0].SpanContext().TraceID())
	})

	t.Run("a breaker rejection is on the service span", func(t *testing.T) {
		calls := filterSpans(fronts, func(s sdktrace.ReadOnlySpan) bool { return s.Name() == "broken" })
		require.Len(t, calls, 2)
		slices.SortFunc(calls, func(x, y sdktrace.ReadOnlySpan) int { return x.StartTime().Compare(y.StartTime()) })
		children := func(parent sdktrace.ReadOnlySpan) []string {
			return spanNames(filterSpans(fronts, func(s sdktrace.ReadOnlySpan) bool {
				return s.Parent().SpanID() == parent.SpanContext().SpanID()
			}))
		}
		assert.NotContains(t, eventNames(calls[0]), tracing.EventBreakerRejected)
		assert.Equal(t, []string{http.MethodPost}, children(calls[0]), "the first call reached the backend and failed")
		assert.Contains(t, calls[0].Attributes(), tracing.AttrOutcome.String("error"))
		assert.Contains(t, eventNames(calls[1]), tracing.EventBreakerRejected)
		assert.Contains(t, calls[1].Attributes(), tracing.AttrOutcome.String("circuit_open"))
		assert.Empty(t, children(calls[1]), "a rejected call sends no request")
	})

	t.Run("the trace id is in log lines and audit records", func(t *testing.T) {
		for _, gw := range []struct {
			name string
			logs *syncBuffer
			path string
		}{{"front", frontLogs, "/api/v1/services/stock/process"}, {"back", backLogs, backPath}} {
			var access, audits []map[string]any
			for _, line := range logLines(t, gw.logs.String()) {
				switch {
				case line["msg"] == "http" && line["path"] == gw.path && line["trace_id"] == traceID:
					access = append(access, line)
				case line["msg"] == "audit" && line["trace_id"] == traceID:
					audits = append(audits, line)
				}
			}
			require.Len(t, access, 1, "%s: access log lines of the traced call", gw.name)
			assert.Equal(t, "trace-test-1", access[0]["request_id"], "%s: the caller's request id, passed on to the remote", gw.name)
			require.Len(t, audits, 1, "%s: audit records of the traced call", gw.name)
			assert.Equal(t, "s1", audits[0]["request_id"], "%s: the audit record of the call", gw.name)
		}
	})
}

// TestSpanExporters exports the spans of a call to stdout and to an OTLP/HTTP
// collector, each flushed when the gateway shuts down.
func TestSpanExporters(t *testing.T) {
	services := `
services:
  payment:
    roles: [guest]
    instances: [{name: payment-1, demo: payment}]
`
	t.Run("stdout", func(t *testing.T) {
		out := &syncBuffer{}
		tg := startGateway(t, testServer+testAuth(true)+"tracing: {exporter: stdout}\n"+services, withStdout(out))
		require.Equal(t, http.StatusOK, tg.process(t, "payment", "", payment("x1")).status)
		tg.stop()
		var names []string
		dec := json.NewDecoder(strings.NewReader(out.String()))
		for dec.More() {
			var span struct {
				Name        string
				SpanContext struct{ TraceID string }
			}
			require.NoError(t, dec.Decode(&span), "stdout: %s", out)
			require.Len(t, span.SpanContext.TraceID, 32, "a span's trace id")
			names = append(names, span.Name)
		}
		assert.ElementsMatch(t, []string{processRoute, "payment"}, names)
	})

	t.Run("otlp", func(t *testing.T) {
		var mu sync.Mutex
		var names []string
		var paths []string
		collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			var req coltracepb.ExportTraceServiceRequest
			if err == nil {
				err = proto.Unmarshal(body, &req)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			paths = append(paths, r.URL.Path)
			for _, rs := range req.ResourceSpans {
				for _, ss := range rs.ScopeSpans {
					for _, s := range ss.Spans {
						names = append(names, s.Name)
					}
				}
			}
			w.Header().Set("Content-Type", "application/x-protobuf")
		}))
		t.Cleanup(collector.Close)
		tg := startGateway(t, testServer+testAuth(true)+"tracing: {exporter: otlp, endpoint: \""+collector.URL+"\"}\n"+services)
		require.Equal(t, http.StatusOK, tg.process(t, "payment", "", payment("x1")).status)
		tg.stop()
		mu.Lock()
		defer mu.Unlock()
		assert.ElementsMatch(t, []string{processRoute, "payment"}, names)
		assert.Equal(t, []string{"/v1/traces"}, paths, "one export, to the standard path")
	})
}

func TestOTLPURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://collector:4318":            "http://collector:4318/v1/traces",
		"http://collector:4318/":           "http://collector:4318/v1/traces",
		"https://otel.example.com/a/b":     "https://otel.example.com/a/b",
		"http://collector:4318/v1/traces/": "http://collector:4318/v1/traces/",
	} {
		if got := otlpURL(in); got != want {
			t.Errorf("otlpURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func filterSpans(spans []sdktrace.ReadOnlySpan, keep func(sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// onlySpan returns the one span of spans with name and kind.
func onlySpan(t *testing.T, spans []sdktrace.ReadOnlySpan, name string, kind trace.SpanKind) sdktrace.ReadOnlySpan {
	t.Helper()
	found := filterSpans(spans, func(s sdktrace.ReadOnlySpan) bool { return s.Name() == name && s.SpanKind() == kind })
	require.Len(t, found, 1, "spans named %q of kind %v among %v", name, kind, spanNames(spans))
	return found[0]
}

func spanNames(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

func eventNames(s sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, ev := range s.Events() {
		out = append(out, ev.Name)
	}
	return out
}

// logLines decodes a JSON log, one object a line.
func logLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(log), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "log line %s", line)
		out = append(out, m)
	}
	return out
}
