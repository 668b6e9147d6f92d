// Package canonjson encodes a JSON value in one canonical form, so that two
// documents that mean the same thing (keys in another order, other spacing)
// give the same bytes. The proxy uses it to build cache keys from request
// data.
package canonjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// Append appends the canonical form of the JSON value raw to dst and returns
// the extended buffer: object keys sorted, insignificant white space removed,
// numbers kept as written. It reports false, with dst unchanged, when raw is
// not a single valid JSON value.
func Append(dst, raw []byte) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return dst, false
	}
	// Only white space may follow the value: Token must find the end of
	// the input. (More is no test of that: it reports false before a stray
	// '}' or ']', on which Token fails with a syntax error.)
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return dst, false
	}
	out, err := json.Marshal(v)
	if err != nil {
		return dst, false
	}
	return append(dst, out...), true
}
