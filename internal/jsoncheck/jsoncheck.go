// Package jsoncheck checks that a JSON document is safe to pass on: valid,
// bounded in depth, and with strings that are valid UTF-8 free of control
// characters. The proxy's Validated middleware uses it on request data.
package jsoncheck

import (
	"encoding/json"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/proxykit/proxy/internal/jsonlex"
)

const (
	// stackDepth is how many open arrays and objects Check tracks without
	// allocating: Validated's default depth limit.
	stackDepth = 32
	// maxKeyInPath bounds how much of an object key a path repeats.
	maxKeyInPath = 64
)

// A Problem says where a document was rejected and why.
type Problem struct {
	// Path leads from the document to the offending value, as in
	// ".items[2].name"; it is empty for the document itself.
	Path string
	// Reason says what is wrong, in lower case.
	Reason string
}

// Check reports why data is rejected, or nil when data is a single valid
// JSON value whose arrays and objects nest at most maxDepth deep and whose
// strings, keys and values alike, are valid UTF-8 without control characters
// (Unicode category Cc) or unpaired surrogate escapes once unescaped. It
// makes one pass over data, without recursion, and allocates nothing unless
// it rejects data or the document nests deeper than 32.
func Check(data []byte, maxDepth int) *Problem {
	s := scanner{data: data, maxDepth: maxDepth}
	return s.scan()
}

// Text returns why s is not valid UTF-8 free of control characters
// (Unicode category Cc), or "" when it is.
func Text(s string) string {
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b < 0x20 || b == 0x7f {
				return reasonControl
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return reasonUTF8
		}
		if unicode.IsControl(r) {
			return reasonControl
		}
		i += size
	}
	return ""
}

const (
	reasonControl   = "contains a control character"
	reasonUTF8      = "is not valid UTF-8"
	reasonSurrogate = "contains an unpaired surrogate escape"
)

// QuoteByte returns b quoted as a Go rune literal, with bytes that are not
// ASCII written as '\xff', for error messages.
func QuoteByte(b byte) string {
	if b < utf8.RuneSelf {
		return strconv.QuoteRune(rune(b))
	}
	return `'\x` + strconv.FormatUint(uint64(b), 16) + `'`
}

// KeySegment returns the path segment of the object key k: ".k" for a plain
// identifier, else ["k"], quoted as Go quotes strings, so that the path
// stays printable and unambiguous.
func KeySegment(k string) string {
	plain := k != ""
	for i := 0; i < len(k) && plain; i++ {
		b := k[i]
		plain = b == '_' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || i > 0 && '0' <= b && b <= '9'
	}
	if plain && len(k) <= maxKeyInPath {
		return "." + k
	}
	if len(k) > maxKeyInPath {
		k = k[:maxKeyInPath] + "..."
	}
	return "[" + strconv.Quote(k) + "]"
}

// A frame is an array or object that the scanner is inside of.
type frame struct {
	array  bool
	index  int    // of the current element, in an array
	key    []byte // the current member's key as written, in an object
	hasKey bool
}

// scanner checks a JSON document in one pass over its bytes. scan keeps
// the open arrays and objects on an explicit stack bounded by maxDepth, in a
// local array while they nest no deeper than stackDepth.
type scanner struct {
	data     []byte
	pos      int
	maxDepth int
}

// What the scanner expects next.
const (
	expectValue = iota
	expectKey
	expectEnd // of a value: a comma, a closing bracket, or the end
)

// scan checks the whole document and returns why it is rejected, or nil.
func (s *scanner) scan() *Problem {
	var frames [stackDepth]frame
	stack := frames[:0]
	state := expectValue
	for {
		s.skipSpace()
		switch state {
		case expectValue:
			if s.pos == len(s.data) {
				return s.syntaxError(stack)
			}
			switch c := s.data[s.pos]; {
			case c == '{' || c == '[':
				if len(stack) == s.maxDepth {
					return s.fail(stack, "nested deeper than "+strconv.Itoa(s.maxDepth)+" levels")
				}
				stack = append(stack, frame{array: c == '['})
				s.pos++
				s.skipSpace()
				switch {
				case c == '{' && s.peek() == '}', c == '[' && s.peek() == ']':
					s.pos++
					stack = stack[:len(stack)-1]
					state = expectEnd
				case c == '{':
					state = expectKey
				}
			case c == '"':
				if reason, ok := s.str(); !ok {
					return s.syntaxError(stack)
				} else if reason != "" {
					return s.fail(stack, reason)
				}
				state = expectEnd
			case c == '-' || '0' <= c && c <= '9':
				if !s.number() {
					return s.syntaxError(stack)
				}
				state = expectEnd
			case c == 't':
				if !s.literal("true") {
					return s.syntaxError(stack)
				}
				state = expectEnd
			case c == 'f':
				if !s.literal("false") {
					return s.syntaxError(stack)
				}
				state = expectEnd
			case c == 'n':
				if !s.literal("null") {
					return s.syntaxError(stack)
				}
				state = expectEnd
			default:
				return s.syntaxError(stack)
			}
		case expectKey:
			if s.peek() != '"' {
				return s.syntaxError(stack)
			}
			top := &stack[len(stack)-1]
			start := s.pos
			reason, ok := s.str()
			if !ok {
				return s.syntaxError(stack)
			}
			if reason != "" {
				if end := closingQuote(s.data, start+1); end > 0 {
					top.key, top.hasKey = s.data[start+1:end], true
				}
				return s.fail(stack, "key "+reason)
			}
			top.key, top.hasKey = s.data[start+1:s.pos-1], true
			s.skipSpace()
			if s.peek() != ':' {
				return s.syntaxError(stack)
			}
			s.pos++
			state = expectValue
		case expectEnd:
			if len(stack) == 0 {
				if s.pos != len(s.data) {
					return s.syntaxError(stack)
				}
				return nil
			}
			top := &stack[len(stack)-1]
			switch c := s.peek(); {
			case c == ',':
				s.pos++
				if top.array {
					top.index++
					state = expectValue
				} else {
					top.key, top.hasKey = nil, false
					state = expectKey
				}
			case c == ']' && top.array, c == '}' && !top.array:
				s.pos++
				stack = stack[:len(stack)-1]
			default:
				return s.syntaxError(stack)
			}
		}
	}
}

// peek returns the byte at the scanner's position, or 0 at the end.
func (s *scanner) peek() byte {
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) literal(lit string) bool {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return false
	}
	s.pos += len(lit)
	return true
}

// number scans a number and reports whether it is well-formed. The byte
// after it is the caller's to check.
func (s *scanner) number() bool {
	end, ok := jsonlex.NumberEnd(s.data, s.pos)
	if ok {
		s.pos = end
	}
	return ok
}

// str scans the string that starts at the scanner's position and leaves the
// position after its closing quote. It reports ok false when the string is
// not valid JSON, and otherwise a reason the string is rejected, or "".
// Either way the position is left where the problem is.
func (s *scanner) str() (reason string, ok bool) {
	d := s.data
	s.pos++ // the opening quote
	for s.pos < len(d) {
		// Fast path: plain printable ASCII.
		for s.pos < len(d) && 0x20 <= d[s.pos] && d[s.pos] < 0x7f && d[s.pos] != '"' && d[s.pos] != '\\' {
			s.pos++
		}
		if s.pos == len(d) {
			break
		}
		c := d[s.pos]
		switch {
		case c == '"':
			s.pos++
			return "", true
		case c == '\\':
			if s.pos+1 == len(d) {
				return "", false
			}
			switch d[s.pos+1] {
			case '"', '\\', '/':
				s.pos += 2
			case 'b', 'f', 'n', 'r', 't':
				return reasonControl, true // valid JSON for a control character
			case 'u':
				r, ok := jsonlex.Hex4(d[s.pos+2:])
				if !ok {
					return "", false
				}
				switch {
				case unicode.IsControl(r):
					return reasonControl, true
				case utf16IsHigh(r):
					if s.pos+7 < len(d) && d[s.pos+6] == '\\' && d[s.pos+7] == 'u' {
						if low, ok := jsonlex.Hex4(d[s.pos+8:]); ok && utf16IsLow(low) {
							s.pos += 12
							continue
						}
					}
					return reasonSurrogate, true
				case utf16IsLow(r):
					return reasonSurrogate, true
				}
				s.pos += 6
			default:
				return "", false
			}
		case c < 0x20, c == 0x7f:
			// A raw control character: invalid JSON below 0x20, valid but
			// rejected at 0x7f. Either way, say what is wrong.
			return reasonControl, true
		case c < utf8.RuneSelf:
			s.pos++
		default:
			r, size := utf8.DecodeRune(d[s.pos:])
			if r == utf8.RuneError && size == 1 {
				return reasonUTF8, true
			}
			if unicode.IsControl(r) {
				return reasonControl, true
			}
			s.pos += size
		}
	}
	return "", false
}

func utf16IsHigh(r rune) bool { return 0xd800 <= r && r < 0xdc00 }
func utf16IsLow(r rune) bool  { return 0xdc00 <= r && r < 0xe000 }

// closingQuote returns the index of the quote that ends the string whose
// contents start at i, or -1 if the string does not end.
func closingQuote(d []byte, i int) int {
	for ; i < len(d); i++ {
		switch d[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// syntaxError reports that the document is not valid JSON at the scanner's
// position.
func (s *scanner) syntaxError(stack []frame) *Problem {
	if s.pos >= len(s.data) {
		return s.fail(stack, "not valid JSON: unexpected end")
	}
	return s.fail(stack, "not valid JSON: unexpected "+QuoteByte(s.data[s.pos])+" at offset "+strconv.Itoa(s.pos))
}

// fail returns an error for the value the scanner is at, whose path stack
// gives.
func (s *scanner) fail(stack []frame, reason string) *Problem {
	path := ""
	for _, f := range stack {
		switch {
		case f.array:
			path += "[" + strconv.Itoa(f.index) + "]"
		case f.hasKey:
			path += KeySegment(unescapeKey(f.key))
		}
	}
	return &Problem{Path: path, Reason: reason}
}

// unescapeKey returns the object key written as raw, unescaped where it can
// be.
func unescapeKey(raw []byte) string {
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	var k string
	if err := json.Unmarshal(quoted, &k); err != nil {
		return string(raw)
	}
	return k
}
