package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// w3c reads and writes the W3C traceparent and tracestate headers, so that
// a trace that enters the gateway goes on into remote instances.
var w3c = propagation.TraceContext{}

// tracerScope names the gateway's own spans (the HTTP server span of a
// call and the client span of each request to a remote instance), next to
// the service spans of the tracing package.
const tracerScope = "github.com/proxykit/proxy/examples/gateway"

// newTracerProvider returns the OpenTelemetry tracer provider of the
// configuration, or nil when tracing is off. Spans are sampled at the
// configured ratio (a sampled caller's span is always followed) and go, by
// a batching processor that Shutdown flushes, to the gateway's log (one
// JSON line per span), to stdout (the SDK's stdout exporter, a JSON object
// per span) or to an OTLP/HTTP collector. extra processors (the tests'
// span recorders) see every sampled span too.
func newTracerProvider(c tracingConfig, log *slog.Logger, stdout io.Writer, extra []sdktrace.SpanProcessor) (*sdktrace.TracerProvider, error) {
	var exp sdktrace.SpanExporter
	switch c.Exporter {
	case "log":
		exp = &logExporter{log: log.With("log", "trace")}
	case "stdout":
		e, err := stdouttrace.New(stdouttrace.WithWriter(stdout))
		if err != nil {
			return nil, fmt.Errorf("tracing: stdout exporter: %w", err)
		}
		exp = e
	case "otlp":
		// The endpoint is used as written; OTEL_EXPORTER_OTLP_HEADERS
		// (and _TRACES_HEADERS) add headers, such as an API key.
		e, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(otlpURL(c.Endpoint)))
		if err != nil {
			return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
		}
		exp = e
	default:
		return nil, nil
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", c.ServiceName)))
	if err != nil {
		res = resource.NewSchemaless(attribute.String("service.name", c.ServiceName))
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio))),
		sdktrace.WithResource(res),
		sdktrace.WithBatcher(exp),
	}
	for _, p := range extra {
		opts = append(opts, sdktrace.WithSpanProcessor(p))
	}
	return sdktrace.NewTracerProvider(opts...), nil
}

// otlpURL returns the OTLP/HTTP traces URL of endpoint: as written, or with
// the standard path /v1/traces when it has no path.
func otlpURL(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Path != "" && u.Path != "/") {
		return endpoint
	}
	u.Path = "/v1/traces"
	return u.String()
}

// startServerSpan continues the caller's trace, if its request carries
// one, in a server span for the call named after its route, and returns
// the span and a context that carries it. The caller ends the span with
// endServerSpan.
func (g *gateway) startServerSpan(r *http.Request) (context.Context, trace.Span) {
	ctx := extractTrace(r.Context(), r.Header)
	return g.shared.tracer.Tracer(tracerScope).Start(ctx, r.Pattern,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("http.route", r.Pattern),
		))
}

// endServerSpan records the status of the answer on span and ends it. A
// status of 0, nothing written, is a handler that panicked: the gateway
// answers 500.
func endServerSpan(span trace.Span, status int) {
	if status == 0 {
		status = http.StatusInternalServerError
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// extractTrace continues the caller's trace, if its request carries one.
func extractTrace(ctx context.Context, h http.Header) context.Context {
	return w3c.Extract(ctx, propagation.HeaderCarrier(h))
}

// injectTrace puts the trace of ctx, if any, on an outgoing request.
func injectTrace(ctx context.Context, h http.Header) {
	w3c.Inject(ctx, propagation.HeaderCarrier(h))
}

// logExporter writes finished spans to a slog logger. It is safe for
// concurrent use.
type logExporter struct {
	log *slog.Logger
}

var _ sdktrace.SpanExporter = (*logExporter)(nil)

// ExportSpans writes one log line per span.
func (e *logExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	for _, s := range spans {
		attrs := []slog.Attr{
			slog.String("trace_id", s.SpanContext().TraceID().String()),
			slog.String("span_id", s.SpanContext().SpanID().String()),
			slog.String("name", s.Name()),
			slog.String("kind", s.SpanKind().String()),
			slog.Time("start", s.StartTime()),
			slog.Float64("duration_ms", float64(s.EndTime().Sub(s.StartTime()).Microseconds())/1000),
			slog.String("status", s.Status().Code.String()),
		}
		if p := s.Parent(); p.IsValid() {
			attrs = append(attrs, slog.String("parent_span_id", p.SpanID().String()))
		}
		if kv := s.Attributes(); len(kv) > 0 {
			attrs = append(attrs, slog.Any("attributes", attrMap(kv)))
		}
		if evs := s.Events(); len(evs) > 0 {
			names := make([]string, len(evs))
			for i, ev := range evs {
				names[i] = ev.Name
			}
			attrs = append(attrs, slog.Any("events", names))
		}
		e.log.LogAttrs(ctx, slog.LevelInfo, "span", attrs...)
	}
	return nil
}

// Shutdown has nothing to release: the log belongs to the gateway.
func (e *logExporter) Shutdown(context.Context) error { return nil }

func attrMap(kv []attribute.KeyValue) map[string]any {
	m := make(map[string]any, len(kv))
	for _, a := range kv {
		m[string(a.Key)] = a.Value.AsInterface()
	}
	return m
}
