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
	"unicode/utf8"
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
func readEnvelope(w http.ResponseWriter, r *http.Request, maxBytes int64, maxDepth int) (*envelope, *apiError) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) ||
			(params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
			return nil, &apiError{Status: http.StatusUnsupportedMediaType, Code: codeUnsupportedMedia,
				Message: "send the body as JSON, with the header Content-Type: application/json"}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
	if err != nil {
		return nil, bodyReadError(err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badRequest("", `a JSON body is required: {"id":"...","user_id":"...","data":{...}}`)
	}
	if !utf8.Valid(body) {
		return nil, badRequest("", "the body is not valid UTF-8")
	}
	if e := checkJSON(body, maxDepth); e != nil {
		return nil, e
	}
	if body = bytes.TrimSpace(body); body[0] != '{' {
		return nil, badRequest("", `want a JSON object: {"id":"...","user_id":"...","data":{...}}`)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var env envelope
	if err := dec.Decode(&env); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, badRequest(te.Field, "want %s", jsonKind(te.Type))
		}
		return nil, badRequest("", "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if string(env.Data) == "null" {
		env.Data = nil
	}
	return &env, nil
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

// checkJSON walks body's tokens and refuses malformed JSON, more than one
// value, objects with a repeated key, and nesting deeper than maxDepth. The
// walk keeps no recursion, so a hostile body cannot exhaust the stack.
func checkJSON(body []byte, maxDepth int) *apiError {
	type frame struct {
		object  bool
		wantKey bool
		keys    map[string]struct{}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var stack []*frame
	values := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return badRequest("", "malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
			}
			return badRequest("", "malformed JSON")
		}
		if len(stack) == 0 {
			values++
			if values > 1 {
				return badRequest("", "unexpected data after the JSON object")
			}
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			key, _ := tok.(string)
			if _, dup := top.keys[key]; dup {
				return badRequest("", "the key %q appears twice in one object", clean(key, 64))
			}
			top.keys[key] = struct{}{}
			top.wantKey = false
			continue
		}
		if top != nil && top.object {
			top.wantKey = true
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= maxDepth {
				return badRequest("", "JSON nested deeper than %d levels", maxDepth)
			}
			f := &frame{object: tok == json.Delim('{')}
			if f.object {
				f.wantKey = true
				f.keys = map[string]struct{}{}
			}
			stack = append(stack, f)
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
	return nil
}
