package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/retry"
	"github.com/proxykit/proxy/tracing"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newRecorder(t *testing.T) (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return rec, tp
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestTracedRecordsOneSpanPerCall(t *testing.T) {
	errDeclined := errors.New("card declined")
	tests := []struct {
		name        string
		resp        *proxy.Response
		err         error
		wantOutcome string
		wantStatus  codes.Code
		wantEvents  []string
	}{
		{"ok", &proxy.Response{Instance: "payment-2", Cached: true}, nil, "ok", codes.Unset, nil},
		{"service error", nil, errDeclined, "error", codes.Error, []string{"exception"}},
		{"breaker open", nil, fmt.Errorf("%w: gobreaker open", proxy.ErrCircuitOpen), "circuit_open", codes.Error,
			[]string{tracing.EventBreakerRejected, "exception"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, tp := newRecorder(t)
			backend := proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
				return tt.resp, tt.err
			})
			svc := proxy.Chain(backend, tracing.Traced(tracing.WithTracerProvider(tp)))
			req := &proxy.Request{ID: "req_1", UserID: "alice", Service: "payment"}
			_, err := svc.Process(t.Context(), req)
			if err != tt.err {
				t.Fatalf("Process error = %v, want %v unchanged", err, tt.err)
			}
			spans := rec.Ended()
			if len(spans) != 1 {
				t.Fatalf("ended spans = %d, want 1", len(spans))
			}
			s := spans[0]
			if s.Name() != "payment" {
				t.Errorf("span name = %q, want payment", s.Name())
			}
			a := attrs(s)
			if got := a[tracing.AttrOutcome].AsString(); got != tt.wantOutcome {
				t.Errorf("outcome attribute = %q, want %q", got, tt.wantOutcome)
			}
			if got := a[tracing.AttrRequestID].AsString(); got != "req_1" {
				t.Errorf("request id attribute = %q, want req_1", got)
			}
			if _, has := a["proxy.user_id"]; has {
				t.Error("span carries the user id")
			}
			if tt.resp != nil && a[tracing.AttrInstance].AsString() != tt.resp.Instance {
				t.Errorf("instance attribute = %q, want %q", a[tracing.AttrInstance].AsString(), tt.resp.Instance)
			}
			if s.Status().Code != tt.wantStatus {
				t.Errorf("status = %v, want %v", s.Status().Code, tt.wantStatus)
			}
			var events []string
			for _, e := range s.Events() {
				events = append(events, e.Name)
			}
			if fmt.Sprint(events) != fmt.Sprint(tt.wantEvents) {
				t.Errorf("events = %v, want %v", events, tt.wantEvents)
			}
		})
	}
}

func TestTracedSpanIsChildAndVisibleInside(t *testing.T) {
	rec, tp := newRecorder(t)
	inner := proxy.ServiceFunc(func(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
		tracing.RecordRetry(ctx, 2, errors.New("connection reset"), 100*time.Millisecond)
		tracing.RecordEvent(ctx, "custom", attribute.String("k", "v"))
		return &proxy.Response{RequestID: req.ID}, nil
	})
	svc := proxy.Chain(inner, tracing.Traced(tracing.WithTracerProvider(tp)))
	ctx, parent := tp.Tracer("test").Start(t.Context(), "gateway request")
	if _, err := svc.Process(ctx, &proxy.Request{ID: "r", Service: "order"}); err != nil {
		t.Fatal(err)
	}
	parent.End()
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("ended spans = %d, want 2", len(spans))
	}
	child := spans[0]
	if child.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("child's parent = %v, want %v", child.Parent().SpanID(), parent.SpanContext().SpanID())
	}
	if child.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Error("child is in another trace")
	}
	ev := child.Events()
	if len(ev) != 2 || ev[0].Name != tracing.EventRetry || ev[1].Name != "custom" {
		t.Fatalf("events = %v, want [%s custom]", ev, tracing.EventRetry)
	}
	var attempt int64
	for _, kv := range ev[0].Attributes {
		if kv.Key == "proxy.retry.attempt" {
			attempt = kv.Value.AsInt64()
		}
	}
	if attempt != 2 {
		t.Errorf("retry event attempt = %d, want 2", attempt)
	}
}

func TestTracedRecordsAndReraisesPanic(t *testing.T) {
	rec, tp := newRecorder(t)
	boom := proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) { panic("boom") })
	svc := proxy.Chain(boom, tracing.Traced(tracing.WithTracerProvider(tp)))
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want boom", r)
			}
		}()
		_, _ = svc.Process(t.Context(), &proxy.Request{Service: "x"})
	}()
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Status().Code != codes.Error {
		t.Fatalf("after a panic: %d spans, want 1 with Error status", len(spans))
	}
}

func TestTracedNilPanics(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"Traced(nil)", func() { tracing.Traced(nil) }},
		{"Traced()(nil)", func() { tracing.Traced()(nil) }},
		{"WithTracerProvider(nil)", func() { tracing.WithTracerProvider(nil) }},
		{"WithSpanName(nil)", func() { tracing.WithSpanName(nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); !strings.HasPrefix(fmt.Sprint(r), "tracing: ") {
					t.Errorf("%s panicked with %v, want a \"tracing: \" panic", tt.name, r)
				}
			}()
			tt.f()
		})
	}
}

func TestRecordWithoutSpanIsHarmless(t *testing.T) {
	tracing.RecordRetry(t.Context(), 2, nil, 0)
	tracing.RecordEvent(t.Context(), "nothing")
}

func BenchmarkTracedNoopProvider(b *testing.B) {
	echo := proxy.ServiceFunc(func(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
		return &proxy.Response{RequestID: req.ID}, nil
	})
	svc := proxy.Chain(echo, tracing.Traced())
	req := &proxy.Request{ID: "r", Service: "payment"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Process(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRetriesAppearOnTheSpan wires the retry policy's hook to RecordRetry:
// each retry of a call is an event on that call's span.
func TestRetriesAppearOnTheSpan(t *testing.T) {
	rec, tp := newRecorder(t)
	var calls int
	flaky := proxy.ServiceFunc(func(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
		calls++
		if calls < 3 {
			return nil, errors.New("connection reset")
		}
		return &proxy.Response{RequestID: req.ID}, nil
	})
	policy := retry.New(retry.WithMaxAttempts(3), retry.WithBackoff(0, 0, 1), retry.WithoutBudget(),
		retry.WithOnRetry(tracing.RecordRetry))
	svc := proxy.Chain(flaky, tracing.Traced(tracing.WithTracerProvider(tp)), proxy.Retrying(policy))
	if _, err := svc.Process(t.Context(), &proxy.Request{ID: "r", Service: "payment"}); err != nil {
		t.Fatalf("Process = %v, want success on the third attempt", err)
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("ended spans = %d, want 1", len(spans))
	}
	var attempts []int64
	for _, e := range spans[0].Events() {
		if e.Name != tracing.EventRetry {
			continue
		}
		for _, kv := range e.Attributes {
			if kv.Key == "proxy.retry.attempt" {
				attempts = append(attempts, kv.Value.AsInt64())
			}
		}
	}
	if fmt.Sprint(attempts) != "[1 2]" {
		t.Errorf("retry events for attempts %v, want [1 2]", attempts)
	}
}
