package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strconv"
	"time"
)

// A Service processes one request. Implementations must be safe for
// concurrent use. Process must honour ctx: it returns soon after ctx is done,
// with an error that matches ctx.Err().
//
// Service is to this package what [net/http.Handler] is to net/http: the real
// service a caller owns and every layer that wraps it share this one method.
type Service interface {
	Process(ctx context.Context, req *Request) (*Response, error)
}

// ServiceFunc adapts an ordinary function to a [Service], as
// [net/http.HandlerFunc] adapts a function to a Handler.
type ServiceFunc func(ctx context.Context, req *Request) (*Response, error)

// Process calls f(ctx, req).
func (f ServiceFunc) Process(ctx context.Context, req *Request) (*Response, error) {
	return f(ctx, req)
}

var _ Service = ServiceFunc(nil)

// A Middleware wraps a [Service] in a layer that adds one behaviour.
type Middleware func(Service) Service

// Chain wraps s in mw and returns the result. mw[0] is the outermost layer:
// a call enters mw[0] first and reaches s last. The wrappers are applied
// once, when Chain is called, not on every request. Chain panics if s or any
// middleware is nil.
func Chain(s Service, mw ...Middleware) Service {
	if s == nil {
		panic("proxy: Chain of a nil Service")
	}
	for i := len(mw) - 1; i >= 0; i-- {
		if mw[i] == nil {
			panic("proxy: Chain with a nil Middleware at index " + strconv.Itoa(i))
		}
		s = mw[i](s)
		if s == nil {
			panic("proxy: Middleware at index " + strconv.Itoa(i) + " returned a nil Service")
		}
	}
	return s
}

// Metadata keys the gateway and the wrappers agree on. A caller may add any
// other key; the wrappers pass metadata through untouched.
const (
	// MetaTraceID carries the caller's trace or request-correlation id.
	MetaTraceID = "trace_id"
	// MetaClientAddr carries the network address of the original client.
	MetaClientAddr = "client_addr"
	// MetaIdempotencyKey carries a key that lets a service recognise a repeat
	// of a request whose effect must not happen twice.
	MetaIdempotencyKey = "idempotency_key"
	// MetaPrincipal carries the authenticated caller's name, when known.
	MetaPrincipal = "principal"
	// MetaRole carries the authenticated caller's role, when known.
	MetaRole = "role"
)

// A Request is the envelope a service receives. Its JSON form is the
// gateway's wire format, {"id", "user_id", "data"}; Service and Metadata
// are set by whoever routes the request and are not part of that form.
//
// Middleware never changes a caller's Request: a layer that needs a different
// one works on a [Request.Clone].
type Request struct {
	// ID identifies the request. Services that must not repeat an effect
	// (a payment) deduplicate on it.
	ID string `json:"id"`
	// UserID identifies the end user on whose behalf the call is made.
	UserID string `json:"user_id"`
	// Data is the service-specific payload, a JSON value kept as raw bytes
	// so that a proxy can pass it through without decoding it.
	Data json.RawMessage `json:"data,omitempty"`
	// Service names the service the request is for.
	Service string `json:"-"`
	// Metadata holds string attributes of the call, such as [MetaTraceID].
	Metadata map[string]string `json:"-"`
}

// Meta returns the metadata value for key, or "" when r has none.
func (r *Request) Meta(key string) string {
	return r.Metadata[key]
}

// Clone returns a deep copy of r: changing the copy's Data bytes or Metadata
// leaves r untouched.
func (r *Request) Clone() *Request {
	c := *r
	c.Data = cloneBytes(r.Data)
	c.Metadata = maps.Clone(r.Metadata)
	return &c
}

// A Response is what a service answers.
type Response struct {
	// RequestID is the ID of the request this answers.
	RequestID string `json:"request_id"`
	// Service names the service that answered.
	Service string `json:"service"`
	// Instance names the instance that answered, when the service has
	// several.
	Instance string `json:"instance,omitempty"`
	// Data is the service-specific answer, a JSON value kept as raw bytes.
	Data json.RawMessage `json:"data,omitempty"`
	// Cached reports whether the answer came from a cache rather than from
	// the service itself.
	Cached bool `json:"cached"`
}

// Clone returns a deep copy of r: changing the copy's Data bytes leaves r
// untouched.
func (r *Response) Clone() *Response {
	c := *r
	c.Data = cloneBytes(r.Data)
	return &c
}

func cloneBytes(b json.RawMessage) json.RawMessage {
	if b == nil {
		return nil
	}
	return append(json.RawMessage(make([]byte, 0, len(b))), b...)
}

// Sentinel errors. Wrappers return them wrapped, often inside a typed error
// that carries details; test for them with [errors.Is].
var (
	// ErrRateLimited is returned, possibly wrapped, when Limited rejects a
	// request. A *[RateLimitError] carries the time to wait.
	ErrRateLimited = errors.New("proxy: rate limited")
	// ErrCircuitOpen is returned, possibly wrapped, when Breaker rejects a
	// request because its circuit is open or its half-open probes are all
	// taken.
	ErrCircuitOpen = errors.New("proxy: circuit open")
	// ErrNoHealthyInstance is returned, possibly wrapped, when Balanced has
	// no instance that may take a call.
	ErrNoHealthyInstance = errors.New("proxy: no healthy instance")
	// ErrInvalidRequest is returned, possibly wrapped, when a request is
	// malformed. An *[InvalidRequestError] names the field. Services return
	// it for their own validation failures too.
	ErrInvalidRequest = errors.New("proxy: invalid request")
	// ErrUnauthenticated is returned, possibly wrapped, when a caller could
	// not be identified.
	ErrUnauthenticated = errors.New("proxy: unauthenticated")
	// ErrForbidden is returned, possibly wrapped, when an identified caller
	// may not make the request.
	ErrForbidden = errors.New("proxy: forbidden")
	// ErrOverloaded is returned, possibly wrapped, when Bulkhead sheds a
	// call because too many are in flight already.
	ErrOverloaded = errors.New("proxy: overloaded")
)

// A RateLimitError describes a rejected request. errors.Is(err,
// [ErrRateLimited]) reports true for it.
type RateLimitError struct {
	// Key is the rate-limit key the request was counted under.
	Key string
	// RetryAfter is how long until a request for Key may be admitted. Zero
	// means unknown.
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	msg := "proxy: rate limited: key " + strconv.Quote(e.Key)
	if e.RetryAfter > 0 {
		msg += ", retry after " + e.RetryAfter.String()
	}
	return msg
}

// Is reports whether target is [ErrRateLimited].
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// An InvalidRequestError names the part of a request that is malformed.
// errors.Is(err, [ErrInvalidRequest]) reports true for it.
type InvalidRequestError struct {
	// Field is the JSON path of the offending field, such as "user_id" or
	// "data.amount".
	Field string
	// Reason says what is wrong with it, in lower case.
	Reason string
}

func (e *InvalidRequestError) Error() string {
	return "proxy: invalid request: " + e.Field + ": " + e.Reason
}

// Is reports whether target is [ErrInvalidRequest].
func (e *InvalidRequestError) Is(target error) bool { return target == ErrInvalidRequest }
