package main

import (
	"context"
	"log/slog"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// w3c reads and writes the W3C traceparent and tracestate headers, so that
// a trace that enters the gateway goes on into remote instances.
var w3c = propagation.TraceContext{}

// newTracerProvider returns the OpenTelemetry tracer provider of the
// configuration, or nil when tracing is off. Spans are sampled at the
// configured ratio (a sampled caller's span is always followed) and written
// to the gateway's log, one JSON line per span, by a batching processor
// that Shutdown flushes.
func newTracerProvider(c tracingConfig, log *slog.Logger) *sdktrace.TracerProvider {
	if c.Exporter != "log" {
		return nil
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio))),
		sdktrace.WithBatcher(&logExporter{log: log.With("log", "trace")}),
	)
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
