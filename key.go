package proxy

import "github.com/proxykit/proxy/internal/canonjson"

// A KeyFunc chooses the key a request is counted, cached or grouped under.
// It must be safe for concurrent use and must not change the request.
type KeyFunc func(*Request) string

// KeyByUser keys a request by its UserID, so that each end user has a limit
// of their own.
func KeyByUser(r *Request) string { return r.UserID }

// KeyByService keys a request by its Service, so that all users share one
// limit per service.
func KeyByService(r *Request) string { return r.Service }

// keySeparator joins the parts of a composite key. After Validated, which
// rejects control characters in a service name or user id and Data that is
// not JSON, it appears nowhere else in a key (canonical JSON escapes it), so
// the parts of a key cannot run together.
const keySeparator = "\x00"

// KeyByRequest keys a request by its service, its user and a canonical
// encoding of its Data (object keys sorted, spacing removed), so that two
// requests that ask the same thing share a key whatever their ID. It is the
// default key of Cached. Data that is not valid JSON is keyed by its bytes.
func KeyByRequest(r *Request) string {
	// The key is built in a buffer on the stack when it fits, so that the
	// string is the only allocation.
	var stack [keyBufferSize]byte
	buf := stack[:0]
	if n := len(r.Service) + len(r.UserID) + len(r.Data) + 2*len(keySeparator); n > len(stack) {
		buf = make([]byte, 0, n)
	}
	buf = append(buf, r.Service...)
	buf = append(buf, keySeparator...)
	buf = append(buf, r.UserID...)
	buf = append(buf, keySeparator...)
	if len(r.Data) > 0 {
		if canon, ok := canonjson.Append(buf, r.Data); ok {
			buf = canon
		} else {
			buf = append(buf, r.Data...)
		}
	}
	return string(buf)
}

// keyBufferSize is the size of the keys KeyByRequest builds without a
// buffer on the heap.
const keyBufferSize = 256

var (
	_ KeyFunc = KeyByUser
	_ KeyFunc = KeyByService
	_ KeyFunc = KeyByRequest
)
