package audit

import (
	"context"
	"time"
)

// An Event records one call: who made it, what it was for, how it ended and
// how long it took. It carries no payload except the Fields its producer
// chose to keep, and no credentials: a producer copies only attributes that
// are safe to store.
//
// The JSON form of an Event is stable: the field names below are part of
// this package's compatibility promise, empty optional fields are omitted,
// Time is RFC 3339 with nanoseconds and Duration is an integer number of
// nanoseconds:
//
//	{"time":"2030-01-01T00:00:00Z","request_id":"req_1","user_id":"alice",
//	 "principal":"alice@example.com","role":"admin","service":"payment",
//	 "instance":"payment-2","outcome":"ok","duration_ns":1500000,
//	 "trace_id":"4bf92f35","fields":{"amount":100.5}}
type Event struct {
	// Time is when the call started. proxy.Audited records it in UTC.
	Time time.Time `json:"time"`
	// RequestID identifies the request.
	RequestID string `json:"request_id"`
	// UserID is the end user on whose behalf the call was made.
	UserID string `json:"user_id,omitempty"`
	// Principal is the authenticated caller, when known.
	Principal string `json:"principal,omitempty"`
	// Role is the authenticated caller's role, when known.
	Role string `json:"role,omitempty"`
	// Service names the service called.
	Service string `json:"service"`
	// Instance names the instance that answered, when one did.
	Instance string `json:"instance,omitempty"`
	// Cached reports whether the answer came from a cache.
	Cached bool `json:"cached,omitempty"`
	// Outcome is the kind of result, from a small closed set such as "ok",
	// "rate_limited" or "error".
	Outcome string `json:"outcome"`
	// ErrorCode is a short stable code for a failed call, and empty for a
	// call that succeeded. It never holds an error's message, which may
	// quote the request.
	ErrorCode string `json:"error_code,omitempty"`
	// Duration is how long the call took.
	Duration time.Duration `json:"duration_ns"`
	// TraceID is the caller's trace or correlation id, when given.
	TraceID string `json:"trace_id,omitempty"`
	// Fields holds the parts of the request's data chosen for the record,
	// already redacted (see [Redactor]). Values must be encodable as JSON.
	Fields map[string]any `json:"fields,omitempty"`
}

// A Sink records events. Implementations must be safe for concurrent use.
//
// Write records e and reports whether it did. It must return soon after ctx
// is done, with an error matching ctx.Err(): callers such as proxy.Audited
// rely on that to bound how long a call waits for its record. Write must not
// keep or change e.Fields after it returns.
//
// Close flushes what the sink holds, stops its background work and releases
// its resources. Write after Close returns an error matching [ErrClosed].
type Sink interface {
	Write(ctx context.Context, e Event) error
	Close() error
}
