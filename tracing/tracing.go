package tracing

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/proxykit/proxy"
)

// ScopeName is the instrumentation scope of the tracer this package uses.
const ScopeName = "github.com/proxykit/proxy/tracing"

// Attribute keys set on every span.
const (
	AttrService   = attribute.Key("proxy.service")
	AttrRequestID = attribute.Key("proxy.request_id")
	AttrOutcome   = attribute.Key("proxy.outcome")
	AttrInstance  = attribute.Key("proxy.instance")
	AttrCached    = attribute.Key("proxy.cached")
)

// Span event names this package records.
const (
	// EventRetry is recorded by RecordRetry, once per retry.
	EventRetry = "proxy.retry"
	// EventBreakerRejected is recorded by Traced when an open breaker
	// rejected the call.
	EventBreakerRejected = "proxy.breaker_rejected"
)

type config struct {
	provider trace.TracerProvider
	kind     trace.SpanKind
	name     func(*proxy.Request) string
}

// An Option configures Traced.
type Option func(*config)

// WithTracerProvider sets where spans go. The default is the global provider,
// [otel.GetTracerProvider], read when Traced is called. A nil tp panics.
func WithTracerProvider(tp trace.TracerProvider) Option {
	if tp == nil {
		panic("tracing: nil TracerProvider")
	}
	return func(c *config) { c.provider = tp }
}

// WithSpanKind sets the kind of the spans. The default is
// [trace.SpanKindInternal]; use [trace.SpanKindClient] when the wrapped
// service is a remote one.
func WithSpanKind(k trace.SpanKind) Option {
	return func(c *config) { c.kind = k }
}

// WithSpanName sets how a span is named. The default is the request's
// Service, or "proxy.Process" when that is empty. Names should have a small,
// bounded set of values: never use user ids or request ids in them.
func WithSpanName(name func(*proxy.Request) string) Option {
	if name == nil {
		panic("tracing: nil span name function")
	}
	return func(c *config) { c.name = name }
}

// Traced returns a Middleware that wraps every call in a span. The span
// carries the service and request id when it starts; when the call ends, the
// outcome ([proxy.OutcomeOf]), the instance and whether the response came
// from a cache. An error is recorded on the span and sets its status to
// Error; an open breaker's rejection adds an [EventBreakerRejected] event.
// The inner layers get a context that carries the span.
//
// Traced belongs outermost; see the package documentation. It panics if an
// option is nil, and the Middleware panics if the Service it wraps is nil.
func Traced(opts ...Option) proxy.Middleware {
	c := config{kind: trace.SpanKindInternal, name: defaultSpanName}
	for _, o := range opts {
		if o == nil {
			panic("tracing: Traced with a nil Option")
		}
		o(&c)
	}
	if c.provider == nil {
		c.provider = otel.GetTracerProvider()
	}
	tracer := c.provider.Tracer(ScopeName)
	kind := trace.WithSpanKind(c.kind)
	return func(next proxy.Service) proxy.Service {
		if next == nil {
			panic("tracing: Traced wrapping a nil Service")
		}
		return proxy.ServiceFunc(func(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
			ctx, span := tracer.Start(ctx, c.name(req), kind)
			defer span.End()
			// A span that records nothing (no SDK, or not sampled) gets no
			// attributes: building them is most of the cost of tracing.
			recording := span.IsRecording()
			if recording {
				span.SetAttributes(AttrService.String(req.Service), AttrRequestID.String(req.ID))
			}
			resp, err := callRecordingPanic(ctx, span, next, req)
			if recording {
				finish(span, resp, err)
			}
			return resp, err
		})
	}
}

// callRecordingPanic calls next; a panic is recorded on the span and
// re-raised, never swallowed.
func callRecordingPanic(ctx context.Context, span trace.Span, next proxy.Service, req *proxy.Request) (*proxy.Response, error) {
	panicked := true
	defer func() {
		if panicked {
			span.SetAttributes(AttrOutcome.String("panic"))
			span.SetStatus(codes.Error, "panic")
		}
	}()
	resp, err := next.Process(ctx, req)
	panicked = false
	return resp, err
}

func finish(span trace.Span, resp *proxy.Response, err error) {
	outcome := proxy.OutcomeOf(err)
	span.SetAttributes(AttrOutcome.String(outcome.String()))
	if resp != nil {
		if resp.Instance != "" {
			span.SetAttributes(AttrInstance.String(resp.Instance))
		}
		span.SetAttributes(AttrCached.Bool(resp.Cached))
	}
	if err == nil {
		return
	}
	if errors.Is(err, proxy.ErrCircuitOpen) {
		span.AddEvent(EventBreakerRejected)
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, outcome.String())
}

func defaultSpanName(r *proxy.Request) string {
	if r.Service == "" {
		return "proxy.Process"
	}
	return r.Service
}

// RecordRetry adds an [EventRetry] event to the span in ctx, if any: attempt
// is the number of the attempt that failed (1 for the first retry), err its
// error, delay the backoff before the next attempt. Its signature is that of
// the retry policy's hook, so that retry.WithOnRetry(RecordRetry) puts every
// retry on the span of the call being retried.
func RecordRetry(ctx context.Context, attempt int, err error, delay time.Duration) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{
		attribute.Int("proxy.retry.attempt", attempt),
		attribute.String("proxy.retry.delay", delay.String()),
	}
	if err != nil {
		attrs = append(attrs, attribute.String("proxy.retry.error", err.Error()))
	}
	span.AddEvent(EventRetry, trace.WithAttributes(attrs...))
}

// RecordEvent adds a named event with attributes to the span in ctx, if any:
// a way for any layer to mark something on the current call's span.
func RecordEvent(ctx context.Context, name string, attrs ...attribute.KeyValue) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.AddEvent(name, trace.WithAttributes(attrs...))
}
