package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/proxykit/proxy/audit"
)

func TestSlogSink(t *testing.T) {
	var buf bytes.Buffer
	s := audit.NewSlog(slog.New(slog.NewJSONHandler(&buf, nil)))
	e := audit.Event{
		Time: t0, RequestID: "req_1", UserID: "alice", Principal: "alice@example.com", Role: "admin",
		Service: "payment", Instance: "payment-2", Cached: true, Outcome: "error", ErrorCode: "card_declined",
		Duration: 1500 * time.Microsecond, TraceID: "4bf92f35",
		Fields: map[string]any{"b": json.Number("2.50"), "a": map[string]any{"x": "y"}},
	}
	if err := s.Write(t.Context(), e); err != nil {
		t.Fatalf("Write() = %v", err)
	}
	want := `{"time":"2030-01-01T00:00:00Z","level":"INFO","msg":"audit","request_id":"req_1","user_id":"alice",` +
		`"principal":"alice@example.com","role":"admin","service":"payment","instance":"payment-2","cached":true,` +
		`"outcome":"error","error_code":"card_declined","duration":1500000,"trace_id":"4bf92f35",` +
		`"fields":{"a":{"x":"y"},"b":2.50}}` + "\n"
	if got := buf.String(); got != want {
		t.Errorf("record =\n%s want\n%s", got, want)
	}

	buf.Reset()
	if err := s.Write(t.Context(), audit.Event{Time: t0, RequestID: "req_2", Service: "user", Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	want = `{"time":"2030-01-01T00:00:00Z","level":"INFO","msg":"audit","request_id":"req_2","service":"user","outcome":"ok","duration":0}` + "\n"
	if got := buf.String(); got != want {
		t.Errorf("record of a minimal event =\n%s want\n%s", got, want)
	}
}

func TestSlogSinkDisabledAndClosed(t *testing.T) {
	var buf bytes.Buffer
	quiet := audit.NewSlog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err := quiet.Write(t.Context(), testEvent(1)); err != nil || buf.Len() != 0 {
		t.Errorf("Write() to a handler above Info = %v and %q, want nil and nothing", err, buf.String())
	}

	s := audit.NewSlog(slog.New(slog.NewTextHandler(&buf, nil)))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Write(ctx, testEvent(1)); !errors.Is(err, context.Canceled) || buf.Len() != 0 {
		t.Errorf("Write(canceled ctx) = %v and %q, want context.Canceled and nothing", err, buf.String())
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := s.Close(); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Close() after Close = %v, want ErrClosed", err)
	}
	if err := s.Write(t.Context(), testEvent(1)); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Write() after Close = %v, want ErrClosed", err)
	}
}

func TestNewSlogPanicsOnNil(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(r.(string), "audit: ") {
			t.Errorf("NewSlog(nil) panicked with %v, want an \"audit: \" panic", r)
		}
	}()
	audit.NewSlog(nil)
}
