package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/audit"
	"github.com/proxykit/proxy/internal/clocktest"
)

var auditedT0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.FixedZone("IST", 5*3600+1800))

// auditedSink keeps the events it is given. Its Write fails with err when
// err is set, and waits for ctx to be done first when block is set.
type auditedSink struct {
	err   error
	block bool

	// mu guards events and ctxErrs.
	mu      sync.Mutex
	events  []audit.Event
	ctxErrs []error // ctx.Err() of each Write as it was called
}

func (s *auditedSink) Write(ctx context.Context, e audit.Event) error {
	s.mu.Lock()
	s.ctxErrs = append(s.ctxErrs, ctx.Err())
	s.mu.Unlock()
	if s.block {
		<-ctx.Done()
		return ctx.Err()
	}
	if s.err != nil {
		return s.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
	return nil
}

func (s *auditedSink) Close() error { return nil }

func (s *auditedSink) recorded(t *testing.T) []audit.Event {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]audit.Event(nil), s.events...)
}

// auditedCodedError is a service error with a stable code.
type auditedCodedError struct{ code string }

func (e *auditedCodedError) Error() string     { return "declined: card 4111 1111 1111 1111" }
func (e *auditedCodedError) ErrorCode() string { return e.code }

// auditedReject is a layer inside Audited that refuses every call with err.
func auditedReject(err error) proxy.Middleware {
	return func(proxy.Service) proxy.Service {
		return proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) { return nil, err })
	}
}

func auditedRequest() *proxy.Request {
	return &proxy.Request{
		ID: "req_7", UserID: "alice", Service: "payment",
		Data: json.RawMessage(`{"amount":100.5,"currency":"INR"}`),
		Metadata: map[string]string{
			proxy.MetaPrincipal: "alice@example.com",
			proxy.MetaRole:      "admin",
			proxy.MetaTraceID:   "4bf92f35",
		},
	}
}

func TestAuditedRecordsEveryCall(t *testing.T) {
	rateLimited := &proxy.RateLimitError{Key: "alice", RetryAfter: time.Second}
	open := fmt.Errorf("%w: %w", proxy.ErrCircuitOpen, errors.New("gobreaker: circuit breaker is open"))
	invalid := &proxy.InvalidRequestError{Field: "data.amount", Reason: "must be positive"}
	tests := []struct {
		name      string
		inner     proxy.Middleware // a layer inside Audited, or nil
		resp      *proxy.Response
		err       error
		wantOut   proxy.Outcome
		wantCode  string
		wantInst  string
		wantCache bool
	}{
		{name: "served", resp: &proxy.Response{RequestID: "req_7", Service: "payment", Instance: "payment-2"},
			wantOut: proxy.OutcomeOK, wantInst: "payment-2"},
		{name: "served from cache", resp: &proxy.Response{RequestID: "req_7", Service: "payment", Cached: true},
			wantOut: proxy.OutcomeOK, wantCache: true},
		{name: "rate limited inside", inner: auditedReject(rateLimited),
			wantOut: proxy.OutcomeRateLimited, wantCode: "rate_limited"},
		{name: "circuit open inside", inner: auditedReject(open),
			wantOut: proxy.OutcomeCircuitOpen, wantCode: "circuit_open"},
		{name: "invalid inside", inner: auditedReject(invalid),
			wantOut: proxy.OutcomeInvalid, wantCode: "invalid"},
		{name: "service error with a code", err: fmt.Errorf("charge: %w", &auditedCodedError{"card_declined"}),
			wantOut: proxy.OutcomeError, wantCode: "card_declined"},
		{name: "service error with an empty code", err: &auditedCodedError{""},
			wantOut: proxy.OutcomeError, wantCode: "error"},
		{name: "canceled", err: context.Canceled, wantOut: proxy.OutcomeCanceled, wantCode: "canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktest.New(auditedT0)
			sink := &auditedSink{}
			svc := proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
				clk.Advance(250 * time.Millisecond)
				return tt.resp, tt.err
			})
			mw := []proxy.Middleware{proxy.Audited(sink, proxy.WithAuditClock(clk))}
			if tt.inner != nil {
				mw = append(mw, tt.inner)
			}
			wantErr := tt.err
			if tt.inner != nil {
				_, wantErr = tt.inner(svc).Process(t.Context(), auditedRequest())
			}

			resp, err := proxy.Chain(svc, mw...).Process(t.Context(), auditedRequest())
			if resp != tt.resp || err != wantErr {
				t.Fatalf("Process() = %v, %v, want %v, %v (passed through unchanged)", resp, err, tt.resp, wantErr)
			}
			events := sink.recorded(t)
			if len(events) != 1 {
				t.Fatalf("recorded %d events, want 1", len(events))
			}
			want := audit.Event{
				Time: auditedT0.UTC(), RequestID: "req_7", UserID: "alice", Principal: "alice@example.com",
				Role: "admin", Service: "payment", Instance: tt.wantInst, Cached: tt.wantCache,
				Outcome: tt.wantOut.String(), ErrorCode: tt.wantCode, TraceID: "4bf92f35",
			}
			if tt.inner == nil {
				want.Duration = 250 * time.Millisecond
			}
			if got := events[0]; !auditedEventEqual(got, want) {
				t.Errorf("event = %+v, want %+v", got, want)
			}
		})
	}
}

func auditedEventEqual(a, b audit.Event) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb) && a.Time.Location() == b.Time.Location()
}

// TestAuditedRecordsCanceledCall checks that a call whose caller has gone
// is still recorded: the sink's context is not the caller's.
func TestAuditedRecordsCanceledCall(t *testing.T) {
	sink := &auditedSink{}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	svc := proxy.Chain(proxy.ServiceFunc(func(ctx context.Context, _ *proxy.Request) (*proxy.Response, error) {
		return nil, ctx.Err()
	}), proxy.Audited(sink))
	if _, err := svc.Process(ctx, auditedRequest()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Process(canceled ctx) = %v, want context.Canceled", err)
	}
	events := sink.recorded(t)
	if len(events) != 1 || events[0].Outcome != "canceled" || sink.ctxErrs[0] != nil {
		t.Fatalf("events = %+v with sink ctx errors %v, want one canceled event written with a live ctx", events, sink.ctxErrs)
	}
}

func TestAuditedFields(t *testing.T) {
	req := auditedRequest()
	req.Data = json.RawMessage(`{"amount":100.50,"currency":"INR","card":{"number":"4111","brand":"visa"},"note":"hi"}`)
	tests := []struct {
		name string
		opts []proxy.AuditOption
		want string
	}{
		{"none by default", nil, `null`},
		{"kept", []proxy.AuditOption{proxy.WithAuditFields("amount"), proxy.WithAuditFields("currency", "missing")},
			`{"amount":100.50,"currency":"INR"}`},
		{"kept and redacted", []proxy.AuditOption{proxy.WithAuditFields("amount", "card"), proxy.WithAuditRedact("NUMBER")},
			`{"amount":100.50,"card":{"brand":"visa","number":"[REDACTED]"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &auditedSink{}
			if _, err := proxy.Chain(echo, proxy.Audited(sink, tt.opts...)).Process(t.Context(), req); err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(sink.recorded(t)[0].Fields)
			if err != nil || string(got) != tt.want {
				t.Errorf("Fields = %s, %v, want %s", got, err, tt.want)
			}
		})
	}
}

func TestAuditedFailClosed(t *testing.T) {
	errSink := errors.New("disk full")
	tests := []struct {
		name    string
		callErr error
	}{
		{"served call", nil},
		{"failed call", &proxy.RateLimitError{Key: "alice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := proxy.Chain(proxy.ServiceFunc(func(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
				if tt.callErr != nil {
					return nil, tt.callErr
				}
				return echo(ctx, req)
			}), proxy.Audited(&auditedSink{err: errSink}))
			resp, err := svc.Process(t.Context(), auditedRequest())
			var aerr *proxy.AuditError
			if resp != nil || !errors.As(err, &aerr) || !errors.Is(err, errSink) {
				t.Fatalf("Process() = %v, %v, want nil, an *AuditError wrapping %v", resp, err, errSink)
			}
			if tt.callErr != nil && (!errors.Is(err, proxy.ErrRateLimited) || aerr.CallErr != tt.callErr) {
				t.Errorf("Process() = %v, want it to match the call's error %v", err, tt.callErr)
			}
			if want := proxy.OutcomeOf(tt.callErr).String(); aerr.Event.Outcome != want || aerr.Event.RequestID != "req_7" {
				t.Errorf("AuditError.Event = %+v, want req_7 with outcome %s", aerr.Event, want)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "proxy: ") || !strings.Contains(msg, "disk full") {
				t.Errorf("Error() = %q, want a proxy: message naming the sink's error", msg)
			}
		})
	}
}

func TestAuditedFailOpen(t *testing.T) {
	var dropped atomic.Uint64
	rateLimited := &proxy.RateLimitError{Key: "alice"}
	fail := false
	svc := proxy.Chain(proxy.ServiceFunc(func(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
		if fail {
			return nil, rateLimited
		}
		return echo(ctx, req)
	}), proxy.Audited(&auditedSink{err: errors.New("disk full")}, proxy.WithAuditFailOpen(&dropped)))

	resp, err := svc.Process(t.Context(), auditedRequest())
	if err != nil || resp == nil || resp.RequestID != "req_7" {
		t.Fatalf("Process() = %v, %v, want the response, <nil>", resp, err)
	}
	fail = true
	if _, err := svc.Process(t.Context(), auditedRequest()); err != rateLimited {
		t.Fatalf("Process() = %v, want the call's own error %v", err, rateLimited)
	}
	if got := dropped.Load(); got != 2 {
		t.Errorf("dropped = %d, want 2", got)
	}
}

// TestAuditedSinkTimeout checks, in a synctest bubble, that a sink that
// blocks holds a call for the audit timeout and no longer.
func TestAuditedSinkTimeout(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		t.Run(fmt.Sprint("fail open ", failOpen), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var dropped atomic.Uint64
				opts := []proxy.AuditOption{proxy.WithAuditTimeout(3 * time.Second)}
				if failOpen {
					opts = append(opts, proxy.WithAuditFailOpen(&dropped))
				}
				svc := proxy.Chain(echo, proxy.Audited(&auditedSink{block: true}, opts...))
				start := time.Now()
				resp, err := svc.Process(t.Context(), auditedRequest())
				if waited := time.Since(start); waited != 3*time.Second {
					t.Errorf("Process() returned after %v, want the audit timeout 3s", waited)
				}
				switch {
				case failOpen && (err != nil || resp == nil || dropped.Load() != 1):
					t.Errorf("Process() = %v, %v with %d dropped, want the response and 1 dropped", resp, err, dropped.Load())
				case !failOpen && (resp != nil || !errors.Is(err, context.DeadlineExceeded)):
					t.Errorf("Process() = %v, %v, want nil and an error matching context.DeadlineExceeded", resp, err)
				}
			})
		})
	}
}

func TestAuditedPanic(t *testing.T) {
	sink := &auditedSink{}
	svc := proxy.Chain(proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		panic("boom")
	}), proxy.Audited(sink))
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want the service's panic \"boom\"", r)
			}
		}()
		_, _ = svc.Process(t.Context(), auditedRequest())
		t.Error("Process() returned, want the service's panic")
	}()
	events := sink.recorded(t)
	if len(events) != 1 || events[0].Outcome != "error" || events[0].ErrorCode != "panic" {
		t.Fatalf("events = %+v, want one with outcome error and code panic", events)
	}
}

func TestAuditedDoesNotChangeRequest(t *testing.T) {
	req := auditedRequest()
	before := req.Clone()
	svc := proxy.Chain(echo, proxy.Audited(&auditedSink{}, proxy.WithAuditFields("amount"), proxy.WithAuditRedact("amount")))
	if _, err := svc.Process(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(req) != fmt.Sprint(before) || string(req.Data) != string(before.Data) {
		t.Errorf("request after Process = %+v, want %+v", req, before)
	}
}

// TestAuditedCanary sends a canary secret in the request's metadata, in its
// data (kept and not), in the service's error and in the response, and
// checks that it reaches no record of a file sink or a slog sink.
func TestAuditedCanary(t *testing.T) {
	const canary = "CANARY-7f3a9c2e-do-not-log"
	path := filepath.Join(t.TempDir(), "audit.log")
	file, err := audit.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	sinks := map[string]audit.Sink{
		"file":      file,
		"slog json": audit.NewSlog(slog.New(slog.NewJSONHandler(&logged, nil))),
		"slog text": audit.NewSlog(slog.New(slog.NewTextHandler(&logged, nil))),
	}
	req := auditedRequest()
	req.Metadata["authorization"] = "Bearer " + canary
	req.Metadata["x-api-key"] = canary
	req.Metadata[proxy.MetaIdempotencyKey] = canary
	req.Metadata[proxy.MetaClientAddr] = canary
	req.Data = json.RawMessage(`{"amount":5,"token":"` + canary + `","card":{"number":"` + canary +
		`","Token":"` + canary + `","brand":"visa","nested":[{"token":"` + canary + `"}]}}`)
	for name, sink := range sinks {
		for _, fail := range []bool{false, true} {
			svc := proxy.Chain(proxy.ServiceFunc(func(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
				if fail {
					return nil, fmt.Errorf("charge failed for token %s", canary)
				}
				return &proxy.Response{RequestID: req.ID, Data: json.RawMessage(`{"token":"` + canary + `"}`)}, nil
			}), proxy.Audited(sink, proxy.WithAuditFields("amount", "card"), proxy.WithAuditRedact("number", "token")))
			if _, err := svc.Process(t.Context(), req); err != nil && !fail {
				t.Fatalf("%s: Process() = %v", name, err)
			}
		}
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	records := map[string][]byte{"file": readAuditedFile(t, path), "slog": logged.Bytes()}
	for name, rec := range records {
		if bytes.Contains(rec, []byte(canary)) {
			t.Errorf("%s records hold the canary:\n%s", name, rec)
		}
		for _, want := range []string{"amount", "visa", audit.Redacted, "req_7"} {
			if !bytes.Contains(rec, []byte(want)) {
				t.Errorf("%s records lack %q:\n%s", name, want, rec)
			}
		}
	}
	if head, err := audit.Verify(bytes.NewReader(records["file"])); err != nil || head.Seq != 2 {
		t.Errorf("Verify() = %+v, %v, want seq 2, <nil>", head, err)
	}
}

func readAuditedFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestAuditedConcurrentFileLog sends calls from many goroutines through
// Audited to a file sink and checks that every call has its record.
func TestAuditedConcurrentFileLog(t *testing.T) {
	const workers, each = 50, 20
	path := filepath.Join(t.TempDir(), "audit.log")
	file, err := audit.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	svc := proxy.Chain(echo, proxy.Audited(file))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				req := &proxy.Request{ID: fmt.Sprintf("w%d-%d", w, i), UserID: "alice", Service: "echo"}
				if _, err := svc.Process(t.Context(), req); err != nil {
					t.Errorf("Process(%s) = %v", req.ID, err)
				}
			}
		})
	}
	wg.Wait()
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	if head, err := audit.Verify(bytes.NewReader(readAuditedFile(t, path))); err != nil || head.Seq != workers*each {
		t.Fatalf("Verify() = %+v, %v, want seq %d, <nil>", head, err, workers*each)
	}
}

func TestAuditedPanicsOnBadConfig(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"nil sink", func() { proxy.Audited(nil) }},
		{"nil service", func() { proxy.Audited(&auditedSink{})(nil) }},
		{"zero timeout", func() { proxy.WithAuditTimeout(0) }},
		{"nil counter", func() { proxy.WithAuditFailOpen(nil) }},
		{"nil clock", func() { proxy.WithAuditClock(nil) }},
		{"nil error code", func() { proxy.WithAuditErrorCode(nil) }},
		{"empty field name", func() { proxy.WithAuditFields("amount", "") }},
		{"empty redacted name", func() { proxy.WithAuditRedact("") }},
		{"nil option", func() { proxy.Audited(&auditedSink{}, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			panicMessage(t, tt.f)
		})
	}
}

func TestAuditedErrorCodeOption(t *testing.T) {
	sink := &auditedSink{}
	svc := proxy.Chain(proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		return nil, io.ErrUnexpectedEOF
	}), proxy.Audited(sink, proxy.WithAuditErrorCode(func(err error) string {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return "short_read"
		}
		return "other"
	})))
	_, _ = svc.Process(t.Context(), auditedRequest())
	if got := sink.recorded(t)[0]; got.ErrorCode != "short_read" || got.Outcome != "error" {
		t.Errorf("event = %+v, want outcome error, code short_read", got)
	}
}

// auditedDiscard is a sink that drops every event.
type auditedDiscard struct{}

func (auditedDiscard) Write(context.Context, audit.Event) error { return nil }
func (auditedDiscard) Close() error                             { return nil }

func BenchmarkAudited(b *testing.B) {
	req := auditedRequest()
	sinks := []struct {
		name string
		open func(b *testing.B) audit.Sink
	}{
		{"discard", func(*testing.B) audit.Sink { return auditedDiscard{} }},
		{"file", func(b *testing.B) audit.Sink {
			s, err := audit.OpenFile(filepath.Join(b.TempDir(), "audit.log"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			return s
		}},
	}
	for _, s := range sinks {
		b.Run(s.name+"/serial", func(b *testing.B) {
			svc := proxy.Chain(echo, proxy.Audited(s.open(b)))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if _, err := svc.Process(ctx, req); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
		})
		b.Run(s.name+"/parallel", func(b *testing.B) {
			svc := proxy.Chain(echo, proxy.Audited(s.open(b)))
			b.ReportAllocs()
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := svc.Process(ctx, req); err != nil {
						b.Error(err)
						return
					}
					n.Add(1)
				}
			})
			b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "events/s")
		})
	}
}
