package proxy

import (
	"context"
	"errors"
	"maps"
	"sync/atomic"
)

// A ResponseStore holds the responses that [Cached] shares between
// requests. GetOrLoad returns the response stored under key; when there is
// none, it calls load and stores a successful result. Concurrent calls for
// one key should share one call of load, and a caller whose ctx ends should
// stop waiting without failing the others, which is why load gets a context
// of its own. load may run after the GetOrLoad call that supplied it has
// returned (a background refresh, or a caller that gave up); it is built so
// that this is safe.
//
// A *cache.Cache[string, *Response] from the cache sub-package is a
// ResponseStore; so can be a store with a shared second level, such as
// Redis, that looks in memory, then remotely, then loads.
//
// A store hands the same *Response to many callers and must treat it as
// read-only; Cached never changes a response it has given to a store or got
// from one.
type ResponseStore interface {
	GetOrLoad(ctx context.Context, key string, load func(context.Context) (*Response, error)) (*Response, error)
}

// errNilResponse is returned when the wrapped service answers neither a
// response nor an error, which Cached cannot share.
var errNilResponse = errors.New("proxy: Cached: service returned a nil response and a nil error")

// Cached returns a middleware that answers a request from store when a
// successful response to an equal request, under the key that key chooses,
// is stored there, and otherwise calls the next service and stores its
// response. A nil key means [KeyByRequest]: service, user and canonical
// data, so that requests that differ only in their ID share a response.
//
// Only successful responses are stored. The next service's errors are
// returned unchanged, to every caller that was waiting for that call, and
// are not cached; with a nil response and a nil error the caller gets an
// error.
//
// Concurrent misses on one key cost one call of the next service (when the
// store coalesces, as the cache package does). That call runs with a copy
// of the request of the caller that started it, on a context carrying that
// caller's values but not its deadline: put a [Timeout] inside Cached to
// bound it. A caller that gives up gets ctx.Err() at once without failing
// the others.
//
// # Shared responses
//
// The response that answered the call is returned as it came to the caller
// whose request made the call, with Cached false. Every other caller (a
// hit, a stale serve, or a caller that shared another's call) gets its own
// copy of the stored response, with RequestID set to its own request's ID
// and Cached true. The store keeps a copy of its own too, and Cached copies
// the request before the call, so neither a change to a returned response
// nor a change to a request after the call can reach what the store holds.
// A hit therefore costs a copy of the request (it may have to start a
// background refresh) and of the response, besides the key.
//
// # Where it belongs
//
// After [Limited] and before [Retrying]: Limited outside, so that a hit is
// still a call the user made and counts against their limit (put Cached
// first if hits should be free); Validated outside, so that malformed
// requests are neither keyed nor stored. Retrying, Breaker and Balanced
// inside, so that a hit costs no retry budget and does not touch the
// breaker or the instances, and so that the one call behind concurrent
// misses is retried once for all of them rather than once per caller. With
// a store that serves stale entries on error, an open breaker inside then
// turns into stale answers rather than failures.
//
// Cached panics if store is nil.
func Cached(store ResponseStore, key KeyFunc) Middleware {
	if store == nil {
		panic("proxy: Cached with a nil ResponseStore")
	}
	if key == nil {
		key = KeyByRequest
	}
	return func(next Service) Service {
		if next == nil {
			panic("proxy: Cached of a nil Service")
		}
		return ServiceFunc(func(ctx context.Context, req *Request) (*Response, error) {
			call := newCachedCall(next, req)
			resp, err := store.GetOrLoad(ctx, key(req), call.load)
			if err != nil {
				return nil, err
			}
			if resp == nil { // a store that holds nil
				return nil, errNilResponse
			}
			if resp == call.stored.Load() { // our own call answered
				return call.own.Load(), nil
			}
			out := resp.Clone()
			out.RequestID = req.ID
			out.Cached = true
			return out, nil
		})
	}
}

// A cachedCall is one request's load: it carries its own copy of the
// request, since the load may run after the caller has returned and
// changed its request.
type cachedCall struct {
	next Service
	req  Request
	// own is the response the next service gave this call's load, and
	// stored the copy given to the store. They are set by the load, which
	// may run concurrently with the caller reading them.
	own    atomic.Pointer[Response]
	stored atomic.Pointer[Response]
	// data holds req.Data when it is small, to save an allocation.
	data [128]byte
}

func newCachedCall(next Service, req *Request) *cachedCall {
	c := &cachedCall{next: next, req: *req}
	switch {
	case req.Data == nil:
	case len(req.Data) <= len(c.data):
		c.req.Data = append(c.data[:0:len(req.Data)], req.Data...)
	default:
		c.req.Data = append([]byte(nil), req.Data...)
	}
	c.req.Metadata = maps.Clone(req.Metadata)
	return c
}

// load calls the next service and gives the store a copy of a successful
// response.
func (c *cachedCall) load(ctx context.Context) (*Response, error) {
	resp, err := c.next.Process(ctx, &c.req)
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, errNilResponse
	}
	stored := resp.Clone()
	c.own.Store(resp)
	c.stored.Store(stored)
	return stored, nil
}
