package proxy

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/proxykit/proxy/audit"
	"github.com/proxykit/proxy/internal/deadline"
)

// DefaultAuditTimeout is how long [Audited] waits for its sink to record an
// event unless [WithAuditTimeout] says otherwise.
const DefaultAuditTimeout = time.Second

// auditPanicCode is the error code of the event of a call whose service
// panicked.
const auditPanicCode = "panic"

// An AuditOption configures [Audited].
type AuditOption func(*auditConfig)

type auditConfig struct {
	timeout time.Duration
	dropped *atomic.Uint64 // nil: fail closed
	clock   Clock
	keep    []string
	redact  []string
	code    func(error) string
}

// WithAuditTimeout sets how long Audited waits for its sink to record a
// call's event, so that a slow or stuck sink cannot hold a call forever.
// The wait is independent of the call's own context: a call whose caller
// gave up is still recorded. The default is [DefaultAuditTimeout].
// WithAuditTimeout panics if d is not positive.
func WithAuditTimeout(d time.Duration) AuditOption {
	if d <= 0 {
		panic("proxy: WithAuditTimeout of a non-positive duration " + d.String())
	}
	return func(c *auditConfig) { c.timeout = d }
}

// WithAuditFailOpen makes Audited serve a call whose event the sink could
// not record, as if the sink had recorded it, and add one to dropped, which
// the caller can export as a metric and alert on. Without it, Audited fails
// closed (see [Audited]). WithAuditFailOpen panics if dropped is nil.
func WithAuditFailOpen(dropped *atomic.Uint64) AuditOption {
	if dropped == nil {
		panic("proxy: WithAuditFailOpen with a nil counter")
	}
	return func(c *auditConfig) { c.dropped = dropped }
}

// WithAuditClock sets the clock Audited reads the start time and the
// duration of a call from. The default is the system clock.
// WithAuditClock panics if c is nil.
func WithAuditClock(c Clock) AuditOption {
	if c == nil {
		panic("proxy: WithAuditClock with a nil clock")
	}
	return func(cfg *auditConfig) { cfg.clock = c }
}

// WithAuditFields names the top-level members of a request's JSON Data that
// an event may carry in [audit.Event.Fields]. Only these are copied; by
// default none is, and events carry no request data at all. Several
// WithAuditFields options add up. Combine it with [WithAuditRedact] to mask
// secrets nested inside the fields kept. WithAuditFields panics on an empty
// name.
func WithAuditFields(names ...string) AuditOption {
	names = auditFieldNames("WithAuditFields", names)
	return func(c *auditConfig) { c.keep = append(c.keep, names...) }
}

// WithAuditRedact names members whose values are replaced by
// [audit.Redacted] wherever they appear, at any depth and in any letter
// case, inside the fields that [WithAuditFields] keeps. A name both kept and
// redacted records that the member was present, not its value. Several
// WithAuditRedact options add up. WithAuditRedact panics on an empty name.
func WithAuditRedact(names ...string) AuditOption {
	names = auditFieldNames("WithAuditRedact", names)
	return func(c *auditConfig) { c.redact = append(c.redact, names...) }
}

// WithAuditErrorCode sets the function that gives the error code of a
// failed call, [audit.Event.ErrorCode]. It is called with the non-nil error
// of the call and must be safe for concurrent use. It must return a short
// code, not the error's message, which may quote the request. The default
// returns the code of the first error in the tree (see [errors.As]) that has
// a method ErrorCode() string, when that code is not empty, and otherwise
// the name of the call's [Outcome], such as "rate_limited".
// WithAuditErrorCode panics if f is nil.
func WithAuditErrorCode(f func(error) string) AuditOption {
	if f == nil {
		panic("proxy: WithAuditErrorCode with a nil function")
	}
	return func(c *auditConfig) { c.code = f }
}

// auditFieldNames returns a copy of names, the arguments of option, and
// panics on an empty one.
func auditFieldNames(option string, names []string) []string {
	for _, n := range names {
		if n == "" {
			panic("proxy: " + option + " with an empty field name")
		}
	}
	return append([]string(nil), names...)
}

// An AuditError reports a call that Audited, failing closed, did not let
// through because its sink could not record it. The call itself did happen:
// Event says how it ended. errors.Is and errors.As see both Err and CallErr,
// so the error still matches what the call returned, and matches
// [context.DeadlineExceeded] when the sink ran out of time.
type AuditError struct {
	// Event is the event that could not be recorded.
	Event audit.Event
	// Err is the sink's error.
	Err error
	// CallErr is the error the call returned, nil when it succeeded.
	CallErr error
}

func (e *AuditError) Error() string {
	return "proxy: " + e.Event.Service + " call " + e.Event.RequestID + " (" + e.Event.Outcome +
		") not recorded by the audit sink: " + e.Err.Error()
}

// Unwrap returns the sink's error and, when the call failed, the call's.
func (e *AuditError) Unwrap() []error {
	if e.CallErr == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.CallErr}
}

// Audited returns a middleware that records one [audit.Event] per call in
// sink: when the call started ([WithAuditClock]), who made it (the
// request's user id and the [MetaPrincipal] and [MetaRole] metadata), what
// it was for (request id, service, and the data fields named by
// [WithAuditFields], redacted by [WithAuditRedact]), how it ended (its
// [Outcome] and an error code, see [WithAuditErrorCode], and the answering
// instance), how long it took, and its [MetaTraceID]. No other metadata,
// such as credentials, and no error message ever reaches the sink. A call
// whose service panics is recorded with the outcome "error" and the code
// "panic", and the panic goes on.
//
// # Where it belongs
//
// Outermost, just inside Instrumented: Chain(svc, Instrumented(...),
// Audited(...), Validated(...), Limited(...), ...). Outside the layers that
// refuse calls, so that a call refused as invalid, rate limited or for an
// open circuit leaves a record as much as a served one; outside Retrying,
// so that a call is one event however many attempts it took; inside
// Instrumented, so that the metrics see audit failures and the time spent
// recording.
//
// # When the sink fails
//
// The event is written after the call returns, when its outcome is known,
// and the write waits at most the audit timeout ([WithAuditTimeout]), so a
// stuck sink never holds a call forever. By default Audited fails closed: if
// the sink cannot record the event, the call returns no response and an
// *[AuditError] wrapping the sink's error and the call's. A call that
// reached the service has had its effect by then, which cannot be undone:
// failing closed withholds the result, it does not prevent the effect, and a
// caller that retries must rely on the service deduplicating by request id,
// as after any error that follows a sent request. With [WithAuditFailOpen]
// Audited serves the call and counts the unrecorded event instead.
//
// The Service Audited returns is safe for concurrent use when sink and the
// wrapped Service are. It never changes the request or the response.
// Audited panics if sink or an option is nil.
func Audited(sink audit.Sink, opts ...AuditOption) Middleware {
	if sink == nil {
		panic("proxy: Audited with a nil audit.Sink")
	}
	cfg := auditConfig{timeout: DefaultAuditTimeout, clock: systemClock{}, code: auditErrorCode}
	for _, opt := range opts {
		if opt == nil {
			panic("proxy: Audited with a nil AuditOption")
		}
		opt(&cfg)
	}
	var redactor *audit.Redactor
	if len(cfg.keep) > 0 {
		redactor = audit.NewRedactor(cfg.keep, cfg.redact)
	}
	return func(next Service) Service {
		if next == nil {
			panic("proxy: Audited around a nil Service")
		}
		return &audited{next: next, sink: sink, cfg: cfg, redactor: redactor}
	}
}

type audited struct {
	next     Service
	sink     audit.Sink
	cfg      auditConfig
	redactor *audit.Redactor // nil when no field is kept
}

func (a *audited) Process(ctx context.Context, req *Request) (*Response, error) {
	start := a.cfg.clock.Now()
	var fields map[string]any
	if a.redactor != nil {
		fields = a.redactor.Fields(req.Data)
	}
	returned := false
	defer func() {
		if !returned { // the service panicked: record the call and let the panic go on
			ev := a.event(req, start, fields, nil, nil)
			ev.Outcome, ev.ErrorCode = OutcomeError.String(), auditPanicCode
			if a.write(ctx, ev) != nil && a.cfg.dropped != nil {
				a.cfg.dropped.Add(1)
			}
		}
	}()
	resp, err := a.next.Process(ctx, req)
	returned = true

	ev := a.event(req, start, fields, resp, err)
	if werr := a.write(ctx, ev); werr != nil {
		if a.cfg.dropped != nil {
			a.cfg.dropped.Add(1)
			return resp, err
		}
		return nil, &AuditError{Event: ev, Err: werr, CallErr: err}
	}
	return resp, err
}

// event returns the event of a call that started at start and returned
// resp and err.
func (a *audited) event(req *Request, start time.Time, fields map[string]any, resp *Response, err error) audit.Event {
	ev := audit.Event{
		Time:      start.UTC(),
		RequestID: req.ID,
		UserID:    req.UserID,
		Principal: req.Meta(MetaPrincipal),
		Role:      req.Meta(MetaRole),
		Service:   req.Service,
		Outcome:   OutcomeOf(err).String(),
		Duration:  since(a.cfg.clock, start),
		TraceID:   req.Meta(MetaTraceID),
		Fields:    fields,
	}
	if resp != nil {
		ev.Instance, ev.Cached = resp.Instance, resp.Cached
	}
	if err != nil {
		ev.ErrorCode = a.cfg.code(err)
	}
	return ev
}

// write records ev, waiting at most the audit timeout, even when ctx is
// already done: the call happened and must be recorded. The values of ctx
// (a trace span, say) are kept. The timeout's timer is armed only for a
// sink that waits on the context's Done (see internal/deadline): most
// sinks write to a buffer and return.
func (a *audited) write(ctx context.Context, ev audit.Event) error {
	wctx := deadline.New(context.WithoutCancel(ctx), a.cfg.timeout, nil)
	defer wctx.Finish()
	return a.sink.Write(wctx, ev)
}

// auditErrorCode is the default of WithAuditErrorCode.
func auditErrorCode(err error) string {
	var coded interface{ ErrorCode() string }
	if errors.As(err, &coded) {
		if code := coded.ErrorCode(); code != "" {
			return code
		}
	}
	return OutcomeOf(err).String()
}
