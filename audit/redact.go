package audit

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Redacted replaces the value of every redacted field in [Event.Fields].
const Redacted = "[REDACTED]"

// A Redactor chooses what of a request's JSON data an audit record may
// carry. It keeps only the top-level members of the data object that are
// named in its keep list, so that a field nobody thought about never
// reaches a record, and inside those it replaces the value of every member
// named in its redact list, at any depth and in any letter case, with
// [Redacted], so that a secret nested in a kept field does not either.
//
// A Redactor is safe for concurrent use. Use [NewRedactor]; the zero value
// keeps nothing.
type Redactor struct {
	keep   map[string]struct{}
	redact map[string]struct{} // lower case
}

// NewRedactor returns a Redactor that keeps the top-level members named in
// keep (matched exactly) and redacts the members named in redact (matched
// in any case). A name in both lists is kept with its value redacted, which
// records that the field was present. NewRedactor panics on an empty name.
func NewRedactor(keep, redact []string) *Redactor {
	r := &Redactor{keep: make(map[string]struct{}, len(keep)), redact: make(map[string]struct{}, len(redact))}
	for _, k := range keep {
		if k == "" {
			panic("audit: NewRedactor with an empty field name to keep")
		}
		r.keep[k] = struct{}{}
	}
	for _, k := range redact {
		if k == "" {
			panic("audit: NewRedactor with an empty field name to redact")
		}
		r.redact[strings.ToLower(k)] = struct{}{}
	}
	return r
}

// Fields returns the members of the JSON object data that r keeps, decoded
// (numbers as [json.Number], so that they are recorded as written), with
// redacted members replaced. It returns nil when r keeps nothing, when data
// is not a JSON object, or when data has none of the kept members. The
// result is new on every call.
func (r *Redactor) Fields(data []byte) map[string]any {
	if len(r.keep) == 0 || len(data) == 0 {
		return nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return nil
	}
	var out map[string]any
	for name, raw := range members {
		if _, ok := r.keep[name]; !ok {
			continue
		}
		var v any
		if r.redacts(name) {
			v = Redacted
		} else {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&v); err != nil {
				continue // cannot happen: raw is a valid JSON value
			}
			v = r.walk(v)
		}
		if out == nil {
			out = make(map[string]any)
		}
		out[name] = v
	}
	return out
}

func (r *Redactor) redacts(name string) bool {
	_, ok := r.redact[strings.ToLower(name)]
	return ok
}

// walk replaces, in place, the value of every redacted member of the
// objects in v, and returns v.
func (r *Redactor) walk(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if r.redacts(k) {
				v[k] = Redacted
			} else {
				v[k] = r.walk(e)
			}
		}
	case []any:
		for i, e := range v {
			v[i] = r.walk(e)
		}
	}
	return v
}
