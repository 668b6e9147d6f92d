package main

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// A flatType is what decodeData knows of a flat struct type: its fields'
// JSON names, in order, and how decodeFlat sets each.
type flatType struct {
	names  []string
	fields []flatField // nil when decodeFlat leaves the type to encoding/json
}

// A flatField is one field of a flat struct type.
type flatField struct {
	name   string
	index  int
	kind   reflect.Kind // of the field, or of what it points to
	ptr    bool         // the field is a pointer to its value
	raw    bool         // the field is a json.RawMessage
	custom bool         // the field's type decodes itself (UnmarshalJSON or UnmarshalText)
}

// flatCache holds flatTypeOf's answers by type.
var flatCache sync.Map // reflect.Type to *flatType, nil for a type that is not flat

// flatTypeOf returns what decodeData knows of t when t is a struct whose
// fields are all named by a plain json tag and hold a string, a number, a
// bool or a json.RawMessage, or a pointer to one, so that no object below
// the top level is decoded into a struct; it returns nil for any other
// type.
func flatTypeOf(t reflect.Type) *flatType {
	if ft, ok := flatCache.Load(t); ok {
		return ft.(*flatType)
	}
	ft := &flatType{}
	flat := t.Kind() == reflect.Struct
	for i := 0; flat && i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		vt := f.Type
		ptr := vt.Kind() == reflect.Pointer
		if ptr {
			vt = vt.Elem() // null or the value, the same to either decoder
		}
		raw := vt == reflect.TypeFor[json.RawMessage]()
		custom := !raw && (reflect.PointerTo(vt).Implements(reflect.TypeFor[json.Unmarshaler]()) ||
			reflect.PointerTo(vt).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()))
		switch vt.Kind() {
		case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Int32,
			reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Float64, reflect.Float32:
		default:
			flat = raw
		}
		flat = flat && f.IsExported() && !f.Anonymous && name != "" && name != "-" && (opts == "" || opts == "omitempty")
		ft.names = append(ft.names, name)
		ft.fields = append(ft.fields, flatField{name: name, index: i, kind: vt.Kind(), ptr: ptr, raw: raw, custom: custom})
	}
	for i, f := range ft.fields {
		// encoding/json decodes neither of two fields of one name, treats
		// null for a pointer to a json.RawMessage in its own way, and lets
		// a type decode itself: decodeFlat leaves all three to it.
		if slices.Contains(ft.names[:i], f.name) || (f.ptr && f.raw) || f.custom {
			ft.fields = nil
			break
		}
	}
	if !flat {
		ft = nil
	}
	flatCache.Store(t, ft)
	return ft
}

// decodeFlat decodes data into *v, a zero flat struct described by ft, and
// reports whether it could. It takes only data that json.Unmarshal would
// decode without error, and decodes it the same: one object whose keys are
// all field names, spelled exactly and without escapes, whose values are
// strings without escapes, numbers, true, false or null, each of a kind
// its field takes; anything else, it reports false, and *v may then be
// partly set.
func decodeFlat(data []byte, v reflect.Value, ft *flatType) bool {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return false
	}
	if i = skipSpace(data, i+1); i < len(data) && data[i] == '}' {
		return skipSpace(data, i+1) == len(data)
	}
	for {
		if i == len(data) || data[i] != '"' {
			return false
		}
		n := bytes.IndexByte(data[i+1:], '"')
		if n < 0 {
			return false
		}
		key := data[i+1 : i+1+n] // a key with an escape matches no name
		var f *flatField
		for j := range ft.fields {
			if ft.fields[j].name == string(key) {
				f = &ft.fields[j]
				break
			}
		}
		if f == nil {
			return false
		}
		if i = skipSpace(data, i+2+n); i == len(data) || data[i] != ':' {
			return false
		}
		i = skipSpace(data, i+1)
		n, ok := setFlat(data[i:], v.Field(f.index), f)
		if !ok {
			return false
		}
		if i = skipSpace(data, i+n); i == len(data) {
			return false
		}
		switch data[i] {
		case '}':
			return skipSpace(data, i+1) == len(data)
		case ',':
			i = skipSpace(data, i+1)
		default:
			return false
		}
	}
}

// setFlat sets fv, field f, from the JSON value at the start of b, as
// json.Unmarshal would, and returns the value's length. It reports false
// for a value it does not take or that does not fit f.
func setFlat(b []byte, fv reflect.Value, f *flatField) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int
	switch c := b[0]; {
	case c == 'n':
		if !bytes.HasPrefix(b, []byte("null")) {
			return 0, false
		}
		switch {
		case f.raw:
			fv.SetBytes([]byte("null"))
		case f.ptr:
			fv.SetZero()
		}
		return 4, true // null leaves any other field as it is
	case c == 't' || c == 'f':
		lit := "false"
		if c == 't' {
			lit = "true"
		}
		if !bytes.HasPrefix(b, []byte(lit)) {
			return 0, false
		}
		n = len(lit)
		if !f.raw {
			if f.kind != reflect.Bool {
				return 0, false
			}
			target(fv, f).SetBool(c == 't')
			return n, true
		}
	case c == '"':
		for n = 1; n < len(b) && b[n] != '"'; n++ {
			if b[n] == '\\' || b[n] < 0x20 {
				return 0, false
			}
		}
		if n == len(b) || !utf8.Valid(b[1:n]) {
			return 0, false
		}
		n++ // the closing quote
		if !f.raw {
			if f.kind != reflect.String {
				return 0, false
			}
			target(fv, f).SetString(string(b[1 : n-1]))
			return n, true
		}
	default:
		if n = jsonNumberLen(b); n == 0 {
			return 0, false
		}
		if !f.raw && !setNumber(fv, f, string(b[:n])) {
			return 0, false
		}
		if !f.raw {
			return n, true
		}
	}
	// A json.RawMessage gets a copy of the value, as json.Unmarshal gives.
	fv.SetBytes(bytes.Clone(b[:n]))
	return n, true
}

// setNumber sets fv, field f of a number kind, to the JSON number s, and
// reports false when s does not fit f's kind, as json.Unmarshal does.
func setNumber(fv reflect.Value, f *flatField, s string) bool {
	t := fv.Type()
	if f.ptr {
		t = t.Elem()
	}
	switch f.kind {
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(s, 10, t.Bits())
		if err != nil {
			return false
		}
		target(fv, f).SetInt(n)
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		n, err := strconv.ParseUint(s, 10, t.Bits())
		if err != nil {
			return false
		}
		target(fv, f).SetUint(n)
	case reflect.Float64, reflect.Float32:
		x, err := strconv.ParseFloat(s, t.Bits())
		if err != nil {
			return false
		}
		target(fv, f).SetFloat(x)
	default:
		return false
	}
	return true
}

// target returns what setFlat sets for field f: fv itself, or a new value
// fv points to.
func target(fv reflect.Value, f *flatField) reflect.Value {
	if !f.ptr {
		return fv
	}
	p := reflect.New(fv.Type().Elem())
	fv.Set(p)
	return p.Elem()
}

// jsonNumberLen returns the length of the JSON number at the start of b,
// or 0 when b does not start with one.
func jsonNumberLen(b []byte) int {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i == len(b):
		return 0
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = digitsEnd(b, i+1)
	default:
		return 0
	}
	if i < len(b) && b[i] == '.' {
		j := digitsEnd(b, i+1)
		if j == i+1 {
			return 0
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digitsEnd(b, i)
		if j == i {
			return 0
		}
		i = j
	}
	return i
}

// digitsEnd returns the index of the first byte of b at or after i that is
// not a decimal digit.
func digitsEnd(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}
