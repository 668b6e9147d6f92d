package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/proxykit/proxy/internal/jsoncheck"
)

// envelope is the body of a process call. Service and metadata come from
// the URL and headers, never from the body.
type envelope struct {
	ID     string          `json:"id"`
	UserID string          `json:"user_id"`
	Data   json.RawMessage `json:"data"`
}

// badRequest returns a 400 answer for field.
func badRequest(field, format string, args ...any) *apiError {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + ": " + msg
	}
	return &apiError{Status: http.StatusBadRequest, Code: "invalid", Message: msg, Field: field}
}

// readEnvelope reads a process call's body strictly: JSON only (415
// otherwise), at most maxBytes (413), valid UTF-8, one object with only the
// envelope's keys, no duplicate keys anywhere, nesting at most maxDepth, the
// right types, and nothing after it (400).
func readEnvelope(w http.ResponseWriter, r *http.Request, maxBytes int64, maxDepth int) (envelope, *apiError) {
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) ||
			(params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
			return envelope{}, &apiError{Status: http.StatusUnsupportedMediaType, Code: codeUnsupportedMedia,
				Message: "send the body as JSON, with the header Content-Type: application/json"}
		}
	}
	body, err := readBody(w, r, maxBytes)
	if err != nil {
		return envelope{}, bodyReadError(err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return envelope{}, badRequest("", `a JSON body is required: {"id":"...","user_id":"...","data":{...}}`)
	}
	if e := checkJSON(body, maxDepth); e != nil {
		return envelope{}, e
	}
	if body = bytes.TrimSpace(body); body[0] != '{' {
		return envelope{}, badRequest("", `want a JSON object: {"id":"...","user_id":"...","data":{...}}`)
	}
	if env, ok := plainEnvelope(body); ok {
		return env, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var env envelope
	if err := dec.Decode(&env); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return envelope{}, badRequest(te.Field, "want %s", jsonKind(te.Type))
		}
		return envelope{}, badRequest("", "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if string(env.Data) == "null" {
		env.Data = nil
	}
	return env, nil
}

// readBody reads r's body, of at most maxBytes. A body that states its
// length within the limit is read into a slice of that length, which the
// server's body reader ends there; any other is read through
// http.MaxBytesReader, which fails past the limit and has the server close
// the connection.
func readBody(w http.ResponseWriter, r *http.Request, maxBytes int64) ([]byte, error) {
	if n := r.ContentLength; n >= 0 && n <= maxBytes {
		body := make([]byte, n)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, err
		}
		return body, nil
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
}

// plainEnvelope decodes the common envelope without encoding/json: an
// object, already checked by checkJSON, whose keys are exactly "id",
// "user_id" and "data" (or some of them), written without escapes, with
// strings without escapes or null for the ids. It reports false for
// anything else (other spellings, which encoding/json matches without
// regard to case, unknown keys, wrong types, escapes), and readEnvelope
// then decodes body strictly, so that the answer is the same either way.
func plainEnvelope(body []byte) (envelope, bool) {
	var env envelope
	i := skipSpace(body, 1) // past '{'
	if body[i] == '}' {
		return env, true
	}
	for {
		if body[i] != '"' {
			return envelope{}, false
		}
		end := i + 1 + bytes.IndexByte(body[i+1:], '"')
		key := body[i+1 : end]
		if bytes.IndexByte(key, '\\') >= 0 {
			return envelope{}, false
		}
		i = skipSpace(body, end+1) + 1 // past ':'
		i = skipSpace(body, i)
		start := i
		i = skipValue(body, i)
		val := body[start:i]
		switch string(key) {
		case "id", "user_id":
			var str string
			switch {
			case string(val) == "null":
			case val[0] == '"' && bytes.IndexByte(val, '\\') < 0:
				str = string(val[1 : len(val)-1])
			default:
				return envelope{}, false
			}
			if key[0] == 'i' {
				env.ID = str
			} else {
				env.UserID = str
			}
		case "data":
			if string(val) != "null" {
				env.Data = json.RawMessage(val)
			}
		default:
			return envelope{}, false
		}
		i = skipSpace(body, i)
		if body[i] == '}' {
			return env, true
		}
		i = skipSpace(body, i+1) // past ','
	}
}

// skipSpace returns the index of the first byte of body at or after i that
// is not JSON white space.
func skipSpace(body []byte, i int) int {
	for i < len(body) {
		switch body[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue returns the index just past the JSON value that starts at
// body[i], which must be valid.
func skipValue(body []byte, i int) int {
	depth := 0
	for ; i < len(body); i++ {
		switch body[i] {
		case '"':
			for i++; body[i] != '"'; i++ {
				if body[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
			if depth < 0 {
				return i // the end of the enclosing container
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

// bodyReadError is the answer to a body that could not be read: 413 when it
// was too large, else 400 (the client stopped sending, or sent too slowly).
func bodyReadError(err error) *apiError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeBodyTooLarge,
			Message: "request body larger than " + strconv.FormatInt(mbe.Limit, 10) + " bytes"}
	}
	return badRequest("", "could not read the body")
}

// checkJSON refuses a body that is not one valid JSON value (trailing data
// included), nests deeper than maxDepth, holds strings that are not valid
// UTF-8 or hold control characters, or repeats a key in one object: parsers
// disagree on which of two equal keys wins, so a repeated key could mean one
// thing to the audit log and another to a backend. It makes two passes over
// body without recursion and, for ordinary bodies, allocates nothing.
func checkJSON(body []byte, maxDepth int) *apiError {
	if p := jsoncheck.Check(body, maxDepth); p != nil {
		field := ""
		if p.Path != "" {
			field = strings.TrimPrefix(p.Path, ".")
		}
		return badRequest(field, "%s", p.Reason)
	}
	if key, dup := duplicateKey(body); dup {
		return badRequest("", "the key %q appears twice in one object", clean(key, 64))
	}
	return nil
}

// linearKeys is how many keys of one object duplicateKey compares one by
// one before it switches to a map.
const linearKeys = 16

// duplicateKey reports whether an object in body, which must be valid JSON,
// has two keys that are equal once unescaped, and returns the key. The keys
// of the open objects share one slice, each object owning its tail from
// start, so ordinary bodies need no allocation: only an object of more than
// linearKeys keys gets a map, and only an escaped key is copied.
func duplicateKey(body []byte) (string, bool) {
	type frame struct {
		array bool
		start int                 // the object's first key in keys
		set   map[string]struct{} // the object's keys, once more than linearKeys
	}
	var frameBuf [32]frame
	var keyBuf [4 * linearKeys][]byte
	stack, keys := frameBuf[:0], keyBuf[:0]
	expectKey := false
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '{':
			stack = append(stack, frame{start: len(keys)})
			expectKey = true
		case '[':
			stack = append(stack, frame{array: true})
			expectKey = false
		case '}', ']':
			if f := stack[len(stack)-1]; !f.array {
				keys = keys[:f.start]
			}
			stack = stack[:len(stack)-1]
		case ',':
			expectKey = len(stack) > 0 && !stack[len(stack)-1].array
		case '"':
			end := i + 1
			escaped := false
			for ; body[end] != '"'; end++ {
				if body[end] == '\\' {
					escaped = true
					end++
				}
			}
			if expectKey {
				f := &stack[len(stack)-1]
				key := body[i+1 : end] // unescaped, so equal keys are equal bytes
				if escaped {
					var k string
					_ = json.Unmarshal(body[i:end+1], &k) // valid: checked before
					key = []byte(k)
				}
				if f.set == nil && len(keys)-f.start < linearKeys {
					for _, k := range keys[f.start:] {
						if bytes.Equal(k, key) {
							return string(key), true
						}
					}
					keys = append(keys, key)
				} else {
					if f.set == nil {
						f.set = make(map[string]struct{}, 2*linearKeys)
						for _, k := range keys[f.start:] {
							f.set[string(k)] = struct{}{}
						}
						keys = keys[:f.start]
					}
					if _, dup := f.set[string(key)]; dup {
						return string(key), true
					}
					f.set[string(key)] = struct{}{}
				}
				expectKey = false
			}
			i = end
		}
	}
	return "", false
}
