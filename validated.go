package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// The limits Validated applies unless told otherwise.
const (
	defaultMaxIDLength      = 128
	defaultMaxDataSize      = 64 << 10
	defaultMaxDepth         = 32
	defaultMaxMetadataValue = 1024
	// maxMetadataEntries bounds the number of metadata entries. The gateway
	// sets a handful; 64 leaves room for a caller's own.
	maxMetadataEntries = 64
	// maxKeyInField bounds how much of a JSON object key an error's Field
	// repeats.
	maxKeyInField = 64
)

// A ValidatedOption configures [Validated].
type ValidatedOption func(*validatedConfig)

type validatedConfig struct {
	maxIDLength      int
	maxDataSize      int
	maxDepth         int
	maxMetadataValue int
}

func positive(option string, n int) {
	if n < 1 {
		panic(fmt.Sprintf("proxy: %s(%d): need at least 1", option, n))
	}
}

// WithMaxIDLength sets the longest ID, UserID, Service and metadata key that
// Validated accepts, in bytes. The default is 128. It panics if n is less
// than 1.
func WithMaxIDLength(n int) ValidatedOption {
	positive("WithMaxIDLength", n)
	return func(c *validatedConfig) { c.maxIDLength = n }
}

// WithMaxDataSize sets the largest Data that Validated accepts, in bytes.
// The default is 64 KiB. It panics if n is less than 1.
func WithMaxDataSize(n int) ValidatedOption {
	positive("WithMaxDataSize", n)
	return func(c *validatedConfig) { c.maxDataSize = n }
}

// WithMaxDepth sets how deeply the arrays and objects of Data may nest: 1
// allows {"a":1} but not {"a":[1]}. The default is 32. It panics if n is
// less than 1.
func WithMaxDepth(n int) ValidatedOption {
	positive("WithMaxDepth", n)
	return func(c *validatedConfig) { c.maxDepth = n }
}

// WithMaxMetadataValue sets the longest metadata value that Validated
// accepts, in bytes. The default is 1024. It panics if n is less than 1.
func WithMaxMetadataValue(n int) ValidatedOption {
	positive("WithMaxMetadataValue", n)
	return func(c *validatedConfig) { c.maxMetadataValue = n }
}

// Validated returns a middleware that rejects a malformed request with an
// *[InvalidRequestError] naming the offending field, without calling the
// wrapped service. A well-formed request goes through unchanged. A request
// is well-formed when:
//
//   - ID and UserID are present, and they and Service (which may be empty)
//     are names: at most 128 bytes (see [WithMaxIDLength]) of A-Z, a-z, 0-9
//     and . _ : @ -, so that they are safe in keys, labels and logs;
//   - Metadata has at most 64 entries, each key a name as above and each
//     value at most 1024 bytes (see [WithMaxMetadataValue]) of valid UTF-8
//     without control characters;
//   - Data is empty, or a single valid JSON value of at most 64 KiB (see
//     [WithMaxDataSize]) whose arrays and objects nest at most 32 deep (see
//     [WithMaxDepth]) and whose strings, keys and values alike, are valid
//     UTF-8 without control characters (Unicode category Cc: U+0000 to
//     U+001F, U+007F to U+009F) once unescaped, so "\n" and "\u0000" are
//     rejected, and without unpaired surrogate escapes.
//
// The Field of the error is a JSON path such as "user_id",
// "metadata.trace_id" or "data.items[2].name"; an object key that is not a
// plain identifier is quoted, as in data["two words"]. When several fields
// are wrong, the first in the order above is named.
//
// Data is checked in a single pass over its bytes, without recursion and
// without decoding it, so that a deep or large document costs time in
// proportion to its size and no more stack than the depth limit allows. A
// request that passes costs no allocation.
//
// # Where it belongs
//
// Inside Instrumented and Audited, so that rejected requests are counted and
// recorded, and outside Limited and Cached, so that a malformed request
// spends no rate-limit token, cache lookup or backend call:
//
//	svc := proxy.Chain(payments,
//		proxy.Instrumented(obs),
//		proxy.Validated(),
//		proxy.Limited(lim, proxy.KeyByUser),
//		proxy.Cached(store, proxy.KeyByRequest),
//	)
func Validated(opts ...ValidatedOption) Middleware {
	cfg := validatedConfig{
		maxIDLength:      defaultMaxIDLength,
		maxDataSize:      defaultMaxDataSize,
		maxDepth:         defaultMaxDepth,
		maxMetadataValue: defaultMaxMetadataValue,
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	return func(next Service) Service {
		if next == nil {
			panic("proxy: Validated around a nil Service")
		}
		return &validated{next: next, cfg: cfg}
	}
}

type validated struct {
	next Service
	cfg  validatedConfig
}

func (s *validated) Process(ctx context.Context, req *Request) (*Response, error) {
	if err := s.cfg.check(req); err != nil {
		return nil, err
	}
	return s.next.Process(ctx, req)
}

func (c *validatedConfig) check(req *Request) *InvalidRequestError {
	if req == nil {
		return &InvalidRequestError{Field: "request", Reason: "missing"}
	}
	if err := c.checkName("id", req.ID, true); err != nil {
		return err
	}
	if err := c.checkName("user_id", req.UserID, true); err != nil {
		return err
	}
	if err := c.checkName("service", req.Service, false); err != nil {
		return err
	}
	if err := c.checkMetadata(req.Metadata); err != nil {
		return err
	}
	if len(req.Data) == 0 {
		return nil
	}
	if len(req.Data) > c.maxDataSize {
		return &InvalidRequestError{Field: "data", Reason: "larger than " + strconv.Itoa(c.maxDataSize) + " bytes"}
	}
	sc := jsonScanner{data: req.Data, maxDepth: c.maxDepth}
	return sc.scan()
}

// isNameByte reports whether b may appear in an id, user id, service name or
// metadata key.
func isNameByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	case b == '.', b == '_', b == ':', b == '@', b == '-':
		return true
	}
	return false
}

func (c *validatedConfig) checkName(field, v string, required bool) *InvalidRequestError {
	if v == "" {
		if required {
			return &InvalidRequestError{Field: field, Reason: "missing"}
		}
		return nil
	}
	if len(v) > c.maxIDLength {
		return &InvalidRequestError{Field: field, Reason: "longer than " + strconv.Itoa(c.maxIDLength) + " bytes"}
	}
	for i := 0; i < len(v); i++ {
		if !isNameByte(v[i]) {
			return &InvalidRequestError{
				Field:  field,
				Reason: "contains " + quoteByte(v[i]) + "; allowed are A-Z a-z 0-9 . _ : @ -",
			}
		}
	}
	return nil
}

func (c *validatedConfig) checkMetadata(md map[string]string) *InvalidRequestError {
	if len(md) > maxMetadataEntries {
		return &InvalidRequestError{Field: "metadata", Reason: "more than " + strconv.Itoa(maxMetadataEntries) + " entries"}
	}
	// Report the failing entry with the smallest key, so that the error does
	// not depend on the map's order.
	var (
		first    *InvalidRequestError
		firstKey string
	)
	for k, v := range md {
		err := c.checkMetadataEntry(k, v)
		if err != nil && (first == nil || k < firstKey) {
			first, firstKey = err, k
		}
	}
	return first
}

func (c *validatedConfig) checkMetadataEntry(k, v string) *InvalidRequestError {
	if k == "" {
		return &InvalidRequestError{Field: "metadata", Reason: "has an empty key"}
	}
	if err := c.checkName("metadata key", k, true); err != nil {
		return &InvalidRequestError{Field: "metadata" + keySegment(k), Reason: "key " + err.Reason}
	}
	if len(v) > c.maxMetadataValue {
		return &InvalidRequestError{Field: "metadata." + k, Reason: "longer than " + strconv.Itoa(c.maxMetadataValue) + " bytes"}
	}
	if reason := checkText(v); reason != "" {
		return &InvalidRequestError{Field: "metadata." + k, Reason: reason}
	}
	return nil
}

// checkText returns why s is not acceptable text, or "".
func checkText(s string) string {
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

func quoteByte(b byte) string {
	if b < utf8.RuneSelf {
		return strconv.QuoteRune(rune(b))
	}
	return `'\x` + strconv.FormatUint(uint64(b), 16) + `'`
}

// keySegment returns the path segment of the object key k: ".k" for a plain
// identifier, else ["k"], quoted as Go quotes strings, so that the path
// stays printable and unambiguous.
func keySegment(k string) string {
	plain := k != ""
	for i := 0; i < len(k) && plain; i++ {
		b := k[i]
		plain = b == '_' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || i > 0 && '0' <= b && b <= '9'
	}
	if plain && len(k) <= maxKeyInField {
		return "." + k
	}
	if len(k) > maxKeyInField {
		k = k[:maxKeyInField] + "..."
	}
	return "[" + strconv.Quote(k) + "]"
}

// A jsonFrame is an array or object that the scanner is inside of.
type jsonFrame struct {
	array  bool
	index  int    // of the current element, in an array
	key    []byte // the current member's key as written, in an object
	hasKey bool
}

// jsonScanner checks a JSON document in one pass over its bytes. scan keeps
// the open arrays and objects on an explicit stack bounded by maxDepth, in a
// local array while they nest no deeper than the default limit.
type jsonScanner struct {
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
func (s *jsonScanner) scan() *InvalidRequestError {
	var frames [defaultMaxDepth]jsonFrame
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
				stack = append(stack, jsonFrame{array: c == '['})
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
func (s *jsonScanner) peek() byte {
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

func (s *jsonScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *jsonScanner) literal(lit string) bool {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return false
	}
	s.pos += len(lit)
	return true
}

// number scans a number and reports whether it is well-formed. The byte
// after it is the caller's to check.
func (s *jsonScanner) number() bool {
	d, p := s.data, s.pos
	digits := func() bool {
		start := p
		for p < len(d) && '0' <= d[p] && d[p] <= '9' {
			p++
		}
		return p > start
	}
	if d[p] == '-' {
		p++
	}
	switch {
	case p < len(d) && d[p] == '0':
		p++
	case !digits():
		return false
	}
	if p < len(d) && d[p] == '.' {
		p++
		if !digits() {
			return false
		}
	}
	if p < len(d) && (d[p] == 'e' || d[p] == 'E') {
		p++
		if p < len(d) && (d[p] == '+' || d[p] == '-') {
			p++
		}
		if !digits() {
			return false
		}
	}
	s.pos = p
	return true
}

// str scans the string that starts at the scanner's position and leaves the
// position after its closing quote. It reports ok false when the string is
// not valid JSON, and otherwise a reason the string is rejected, or "".
// Either way the position is left where the problem is.
func (s *jsonScanner) str() (reason string, ok bool) {
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
				r, ok := hex4(d[s.pos+2:])
				if !ok {
					return "", false
				}
				switch {
				case unicode.IsControl(r):
					return reasonControl, true
				case utf16IsHigh(r):
					if s.pos+7 < len(d) && d[s.pos+6] == '\\' && d[s.pos+7] == 'u' {
						if low, ok := hex4(d[s.pos+8:]); ok && utf16IsLow(low) {
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

// hex4 decodes the four hex digits that b starts with.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

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
func (s *jsonScanner) syntaxError(stack []jsonFrame) *InvalidRequestError {
	if s.pos >= len(s.data) {
		return s.fail(stack, "not valid JSON: unexpected end")
	}
	return s.fail(stack, "not valid JSON: unexpected "+quoteByte(s.data[s.pos])+" at offset "+strconv.Itoa(s.pos))
}

// fail returns an error for the value the scanner is at, whose path stack
// gives.
func (s *jsonScanner) fail(stack []jsonFrame, reason string) *InvalidRequestError {
	path := "data"
	for _, f := range stack {
		switch {
		case f.array:
			path += "[" + strconv.Itoa(f.index) + "]"
		case f.hasKey:
			path += keySegment(unescapeKey(f.key))
		}
	}
	return &InvalidRequestError{Field: path, Reason: reason}
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

var _ Service = (*validated)(nil)
