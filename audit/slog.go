package audit

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
)

// SlogMessage is the message of the log records a [SlogSink] emits.
const SlogMessage = "audit"

// A SlogSink writes events to a [log/slog] handler, one record per event at
// level Info with the message [SlogMessage]. The record's time is the
// event's Time, and its attributes are the event's fields under the names
// of the event's JSON form (empty optional ones left out), with Duration as
// "duration" and Fields as a group "fields" in key order. It suits a
// program whose logs already go to an audited store; it is not
// tamper-evident by itself.
//
// A SlogSink is safe for concurrent use if its handler is, as the handlers
// of log/slog are. Write blocks as long as the handler does. Use
// [NewSlog]; the zero value is not usable.
type SlogSink struct {
	h      slog.Handler
	closed atomic.Bool
}

var _ Sink = (*SlogSink)(nil)

// NewSlog returns a sink that writes events to l's handler. It panics if l
// is nil.
func NewSlog(l *slog.Logger) *SlogSink {
	if l == nil {
		panic("audit: NewSlog of a nil *slog.Logger")
	}
	return &SlogSink{h: l.Handler()}
}

// Write emits a record of e, unless the handler is not enabled for level
// Info. It returns ctx.Err() without emitting when ctx is already done, and
// the handler's error.
func (s *SlogSink) Write(ctx context.Context, e Event) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !s.h.Enabled(ctx, slog.LevelInfo) {
		return nil
	}
	r := slog.NewRecord(e.Time, slog.LevelInfo, SlogMessage, 0)
	r.AddAttrs(slog.String("request_id", e.RequestID))
	addString(&r, "user_id", e.UserID)
	addString(&r, "principal", e.Principal)
	addString(&r, "role", e.Role)
	r.AddAttrs(slog.String("service", e.Service))
	addString(&r, "instance", e.Instance)
	if e.Cached {
		r.AddAttrs(slog.Bool("cached", true))
	}
	r.AddAttrs(slog.String("outcome", e.Outcome))
	addString(&r, "error_code", e.ErrorCode)
	r.AddAttrs(slog.Duration("duration", e.Duration))
	addString(&r, "trace_id", e.TraceID)
	if len(e.Fields) > 0 {
		keys := make([]string, 0, len(e.Fields))
		for k := range e.Fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		attrs := make([]any, len(keys))
		for i, k := range keys {
			attrs[i] = slog.Any(k, e.Fields[k])
		}
		r.AddAttrs(slog.Group("fields", attrs...))
	}
	return s.h.Handle(ctx, r)
}

func addString(r *slog.Record, key, value string) {
	if value != "" {
		r.AddAttrs(slog.String(key, value))
	}
}

// Close makes later writes fail with [ErrClosed]. It does not close the
// handler's output, which the sink does not own. Close after Close returns
// ErrClosed.
func (s *SlogSink) Close() error {
	if s.closed.Swap(true) {
		return ErrClosed
	}
	return nil
}
