package proxy

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"sync/atomic"
)

// A ResponseStore holds the responses that [Cached] shares between
// requests. A *cache.Cache[string, *Response] from the cache sub-package is
// one; so can be a store with a shared second level, such as Redis, that
// answers Get from memory and looks remotely in GetOrLoad.
//
// Get returns the fresh response stored under key, without blocking and
// without loading: it is the hit path. GetOrLoad returns the response
// stored under key or, when there is none, calls load and stores a
// successful result. Concurrent calls for one key should share one call of
// load, and a caller whose ctx ends should stop waiting without failing the
// others, which is why load gets a context of its own. load may run after
// the GetOrLoad call that supplied it has returned (a background refresh,
// or a caller that gave up); Cached builds it so that this is safe.
//
// A store hands the same *Response to many callers and must treat it as
// read-only; Cached never changes a response it has given to a store or got
// from one.
type ResponseStore interface {
	Get(key string) (*Response, bool)
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
// and Cached true. The store keeps a copy of its own, and on a miss Cached
// copies the request before the call, so neither a change to a returned
// response nor a change to a request after the call can reach what the
// store holds. A hit costs the key, one Get and a copy of the response. A
// miss looks the key up twice, with Get and then GetOrLoad, and a
// cache.Cache counts both lookups in its Stats.
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
// Cached panics if store is nil, and the middleware if the next service is.
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
			k := key(req)
			if resp, ok := store.Get(k); ok {
				return shared(resp, req)
			}
			call := newCachedCall(next, req)
			resp, err := store.GetOrLoad(ctx, k, call.load)
			switch {
			case err != nil:
				return nil, err
			case resp == call.stored.Load(): // our own call answered
				return call.own.Load(), nil
			default:
				return shared(resp, req)
			}
		})
	}
}

// shared returns a caller's own copy of a stored response.
func shared(stored *Response, req *Request) (*Response, error) {
	if stored == nil { // a store that holds nil
		return nil, errNilResponse
	}
	return cloneResponse(stored, req.ID), nil
}

// Blocks that hold a Response and the bytes of its Data, so that a hit
// copies a response with small data in one allocation.
type (
	response32 struct {
		resp Response
		data [32]byte
	}
	response128 struct {
		resp Response
		data [128]byte
	}
	response512 struct {
		resp Response
		data [512]byte
	}
)

// cloneResponse returns a deep copy of r answering the request id, with
// Cached set, in one allocation when r's data is small. It sets each field
// of the new block once, rather than copying all of r and then overwriting
// the request id, the data and Cached.
func cloneResponse(r *Response, id string) *Response {
	var (
		c    *Response
		data []byte
	)
	switch n := len(r.Data); {
	case r.Data == nil || n > len(response512{}.data):
		c = r.Clone()
		c.RequestID = id
		c.Cached = true
		return c
	case n <= len(response32{}.data):
		b := new(response32)
		c, data = &b.resp, b.data[:n:n]
	case n <= len(response128{}.data):
		b := new(response128)
		c, data = &b.resp, b.data[:n:n]
	default:
		b := new(response512)
		c, data = &b.resp, b.data[:n:n]
	}
	copy(data, r.Data)
	*c = Response{
		RequestID: id,
		Service:   r.Service,
		Instance:  r.Instance,
		Data:      data,
		Cached:    true,
	}
	return c
}

// A cachedCall is one request's load. It carries its own copy of the
// request, since the load may run after the caller has returned and changed
// its request.
type cachedCall struct {
	next Service
	req  Request
	// own is the response the next service gave this call's load, and
	// stored the copy given to the store. They are set by the load, which
	// may run concurrently with the caller reading them.
	own    atomic.Pointer[Response]
	stored atomic.Pointer[Response]
}

func newCachedCall(next Service, req *Request) *cachedCall {
	c := &cachedCall{next: next, req: *req}
	c.req.Data = bytes.Clone(req.Data)
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
