// Package canonjson encodes a JSON value in one canonical form, so that two
// documents that mean the same thing (keys in another order, other spacing,
// other escapes) give the same bytes. The proxy uses it to build cache keys
// from request data.
//
// The canonical form is exactly what encoding/json gives when it decodes
// the document into an any (with UseNumber) and marshals the result: object
// keys sorted byte-wise by their decoded value, the last of duplicate keys
// kept, no white space, numbers as written, strings re-escaped as
// json.Marshal escapes them (HTML-safe, invalid UTF-8 replaced). Append
// computes it in one pass over the document, without decoding it into
// values.
package canonjson

import (
	"bytes"
	"slices"
	"unicode/utf8"

	"github.com/proxykit/proxy/internal/jsonlex"
)

const (
	// maxDepth is how deeply encoding/json lets arrays and objects nest.
	maxDepth = 10000
	// stackFrames is how deeply Append nests without allocating.
	stackFrames = 16
)

// Append appends the canonical form of the JSON value raw to dst and returns
// the extended buffer. It reports false, with dst unchanged, when raw is not
// a single valid JSON value (white space around it is allowed), or nests
// deeper than encoding/json accepts.
//
// Append allocates nothing beyond growing dst unless an object's keys are
// out of order, repeated or escaped, or the document nests deeper than 32.
func Append(dst, raw []byte) ([]byte, bool) {
	c := canonicalizer{src: raw}
	out, ok := c.run(dst)
	if !ok {
		return dst, false
	}
	return out, true
}

// A frame is an array or object being written.
type frame struct {
	object bool
	// sorted reports whether the keys of the object written so far are in
	// strictly increasing order, and none has an escape: then the object
	// needs no rewriting when it ends.
	sorted bool
	// body is where the object's members start in the output, and
	// out[key:keyEnd] the last key written, without its quotes.
	body, key, keyEnd int
}

type canonicalizer struct {
	src []byte
	pos int
}

// What run expects next.
const (
	expectValue = iota
	expectKey
	expectEnd // of a value: a comma, a closing bracket, or the end
)

func (c *canonicalizer) run(out []byte) ([]byte, bool) {
	// The stack of open containers, on the stack while it is small. (As a
	// field of c, escape analysis would move it to the heap.)
	var frames [stackFrames]frame
	stack := frames[:0]
	state := expectValue
	var ok bool
	for {
		c.skipSpace()
		switch state {
		case expectValue:
			if c.pos == len(c.src) {
				return out, false
			}
			switch b := c.src[c.pos]; b {
			case '{', '[':
				if len(stack) == maxDepth {
					return out, false
				}
				c.pos++
				out = append(out, b)
				c.skipSpace()
				switch {
				case b == '{' && c.peek() == '}':
					c.pos++
					out = append(out, '}')
					state = expectEnd
				case b == '[' && c.peek() == ']':
					c.pos++
					out = append(out, ']')
					state = expectEnd
				case b == '{':
					stack = append(stack, frame{object: true, sorted: true, body: len(out), key: -1})
					state = expectKey
				default:
					stack = append(stack, frame{})
				}
			case '"':
				if out, _, ok = c.str(out); !ok {
					return out, false
				}
				state = expectEnd
			case 't':
				if out, ok = c.literal(out, "true"); !ok {
					return out, false
				}
				state = expectEnd
			case 'f':
				if out, ok = c.literal(out, "false"); !ok {
					return out, false
				}
				state = expectEnd
			case 'n':
				if out, ok = c.literal(out, "null"); !ok {
					return out, false
				}
				state = expectEnd
			default:
				if out, ok = c.number(out); !ok {
					return out, false
				}
				state = expectEnd
			}
		case expectKey:
			if c.peek() != '"' {
				return out, false
			}
			top := &stack[len(stack)-1]
			start := len(out)
			var escaped bool
			if out, escaped, ok = c.str(out); !ok {
				return out, false
			}
			if top.sorted {
				key, keyEnd := start+1, len(out)-1
				if escaped || top.key >= 0 && !less(out[top.key:top.keyEnd], out[key:keyEnd]) {
					top.sorted = false
				}
				top.key, top.keyEnd = key, keyEnd
			}
			c.skipSpace()
			if c.peek() != ':' {
				return out, false
			}
			c.pos++
			out = append(out, ':')
			state = expectValue
		case expectEnd:
			if len(stack) == 0 {
				return out, c.pos == len(c.src)
			}
			top := &stack[len(stack)-1]
			switch b := c.peek(); {
			case b == ',':
				c.pos++
				out = append(out, ',')
				if top.object {
					state = expectKey
				} else {
					state = expectValue
				}
			case b == '}' && top.object:
				c.pos++
				if !top.sorted {
					out = sortObject(out, top.body)
				}
				stack = stack[:len(stack)-1]
				out = append(out, '}')
			case b == ']' && !top.object:
				c.pos++
				stack = stack[:len(stack)-1]
				out = append(out, ']')
			default:
				return out, false
			}
		}
	}
}

// less reports whether a sorts before b, byte-wise.
func less(a, b []byte) bool {
	if len(a) > 0 && len(b) > 0 && a[0] != b[0] {
		return a[0] < b[0] // most keys differ in their first byte
	}
	return string(a) < string(b)
}

// The buffers sortObject keeps on the stack while they are large enough.
// (Go zeroes them on every call, so they are kept small.)
const (
	sortMembers = 16
	sortBytes   = 256
	// insertionSortMax is the most members sortObject sorts by insertion.
	insertionSortMax = 12
)

// sortObject rewrites the members of an object, out[body:], which are
// already in canonical form: sorted by decoded key, and only the last of
// members with equal keys kept, as encoding/json decodes an object into a
// map and marshals the map.
func sortObject(out []byte, body int) []byte {
	var (
		scratchBuf [sortBytes]byte
		membersBuf [sortMembers]sortMember
	)
	scratch := append(scratchBuf[:0], out[body:]...)
	var keys []byte // the keys with an escape, unescaped
	members := membersBuf[:0]
	for i := 0; i < len(scratch); {
		// scratch[i:] starts with a member, "key":value, in canonical form.
		keyEnd, escaped := stringEnd(scratch, i)
		m := sortMember{keyLo: i + 1, keyHi: keyEnd, start: i}
		if escaped {
			m.keyLo = len(keys)
			keys = unescape(keys, scratch[i+1:keyEnd])
			m.keyHi, m.unescaped = len(keys), true
		}
		i = valueEnd(scratch, keyEnd+2) // after the closing quote and the colon
		m.end = i
		members = append(members, m)
		i++ // the comma
	}
	key := func(m *sortMember) []byte {
		if m.unescaped {
			return keys[m.keyLo:m.keyHi]
		}
		return scratch[m.keyLo:m.keyHi]
	}
	if len(members) <= insertionSortMax {
		// Insertion sort, stable: members are few, and often nearly sorted.
		for i := 1; i < len(members); i++ {
			for j := i; j > 0 && bytes.Compare(key(&members[j-1]), key(&members[j])) > 0; j-- {
				members[j-1], members[j] = members[j], members[j-1]
			}
		}
	} else {
		slices.SortStableFunc(members, func(a, b sortMember) int { return bytes.Compare(key(&a), key(&b)) })
	}

	out = out[:body]
	for i := range members {
		m := &members[i]
		if i+1 < len(members) && bytes.Equal(key(m), key(&members[i+1])) {
			continue // a later member has the same key: it wins
		}
		if len(out) > body {
			out = append(out, ',')
		}
		out = append(out, scratch[m.start:m.end]...)
	}
	return out
}

// A sortMember is a member of an object being sorted: where it is in the
// copy of the object's members, and where its decoded key is: in that copy,
// or, when the key has an escape, unescaped in a buffer of its own.
type sortMember struct {
	keyLo, keyHi int
	start, end   int
	unescaped    bool
}

// stringEnd returns the index of the quote that ends the canonical string
// that starts at b[i], and whether the string has an escape.
func stringEnd(b []byte, i int) (end int, escaped bool) {
	for i++; ; i++ {
		switch b[i] {
		case '"':
			return i, escaped
		case '\\':
			escaped = true
			i++
		}
	}
}

// valueEnd returns the index just after the canonical value that starts
// at b[i].
func valueEnd(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			i, _ = stringEnd(b, i)
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

// unescape appends the string that the canonical string body s encodes.
// s contains only the escapes that str writes.
func unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b != '\\' {
			dst = append(dst, b)
			continue
		}
		i++
		switch s[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := jsonlex.Hex4(s[i+1:])
			dst = utf8.AppendRune(dst, r)
			i += 4
		default: // '"' and '\\'
			dst = append(dst, s[i])
		}
	}
	return dst
}

func (c *canonicalizer) peek() byte {
	if c.pos < len(c.src) {
		return c.src[c.pos]
	}
	return 0
}

func (c *canonicalizer) skipSpace() {
	if c.pos < len(c.src) && c.src[c.pos] > ' ' {
		return // the usual case, in compact documents
	}
	for c.pos < len(c.src) {
		switch c.src[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *canonicalizer) literal(out []byte, lit string) ([]byte, bool) {
	if len(c.src)-c.pos < len(lit) || string(c.src[c.pos:c.pos+len(lit)]) != lit {
		return out, false
	}
	c.pos += len(lit)
	return append(out, lit...), true
}

// number copies the number at the position, which it checks against the
// JSON grammar.
func (c *canonicalizer) number(out []byte) ([]byte, bool) {
	end, ok := jsonlex.NumberEnd(c.src, c.pos)
	if !ok {
		return out, false
	}
	out = append(out, c.src[c.pos:end]...)
	c.pos = end
	return out, true
}

// plain marks the ASCII bytes that a string holds and json.Marshal writes
// as they are: printable, and neither a quote, a backslash nor one of the
// HTML characters <, > and &.
var plain = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = true
	}
	for _, b := range `"\<>&` {
		t[b] = false
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// str writes the string at the position as json.Marshal writes the string
// that encoding/json decodes it to, and reports whether the output has an
// escape. Runs of bytes that need no change are copied as they are.
func (c *canonicalizer) str(out []byte) (_ []byte, escaped, ok bool) {
	d := c.src
	i := c.pos + 1 // after the opening quote
	out = append(out, '"')
	start := i
	for i < len(d) {
		b := d[i]
		if b < utf8.RuneSelf {
			if plain[b] {
				i++
				continue
			}
			out = append(out, d[start:i]...)
			switch b {
			case '"':
				c.pos = i + 1
				return append(out, '"'), escaped, true
			case '\\':
				r, n := jsonlex.Unescape(d[i:])
				if n == 0 {
					return out, false, false
				}
				i += n
				out = appendRune(out, r)
				escaped = escaped || needsEscape(r)
			default:
				if b < 0x20 { // a raw control character: not valid JSON
					return out, false, false
				}
				out = appendRune(out, rune(b)) // < > &
				escaped = true
				i++
			}
			start = i
			continue
		}
		r, size := utf8.DecodeRune(d[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = append(out, d[start:i]...)
			out = utf8.AppendRune(out, utf8.RuneError)
		case r == '\u2028' || r == '\u2029':
			out = append(out, d[start:i]...)
			out = appendRune(out, r)
			escaped = true
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return out, false, false // no closing quote
}

// needsEscape reports whether appendRune writes r escaped.
func needsEscape(r rune) bool {
	return r < utf8.RuneSelf && !plain[r] || r == '\u2028' || r == '\u2029'
}

// appendRune appends r as json.Marshal writes it inside a string.
func appendRune(out []byte, r rune) []byte {
	if r >= utf8.RuneSelf {
		if r == '\u2028' || r == '\u2029' {
			return append(out, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		}
		return utf8.AppendRune(out, r)
	}
	if plain[r] {
		return append(out, byte(r))
	}
	switch r {
	case '\\', '"':
		return append(out, '\\', byte(r))
	case '\b':
		return append(out, '\\', 'b')
	case '\f':
		return append(out, '\\', 'f')
	case '\n':
		return append(out, '\\', 'n')
	case '\r':
		return append(out, '\\', 'r')
	case '\t':
		return append(out, '\\', 't')
	}
	return append(out, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
}
