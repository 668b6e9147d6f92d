// Package jsonlex holds the lexical pieces of JSON that the hand-written
// scanners of internal/canonjson and internal/jsoncheck share: the grammar
// of a number and the escapes of a string. The two must agree with each
// other and with encoding/json on both.
package jsonlex

import (
	"unicode/utf16"
	"unicode/utf8"
)

// Unescape decodes the escape that s starts with, as encoding/json
// does, and returns the rune and the length of the escape; n is 0 when the
// escape is not valid JSON. A \u escape of a UTF-16 surrogate is decoded
// with the escape of its pair when one follows, and is otherwise the
// replacement character.
func Unescape(s []byte) (r rune, n int) {
	if len(s) < 2 {
		return 0, 0
	}
	switch s[1] {
	case '"', '\\', '/':
		return rune(s[1]), 2
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		r, ok := Hex4(s[2:])
		if !ok {
			return 0, 0
		}
		if !utf16.IsSurrogate(r) {
			return r, 6
		}
		if len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
			if r2, ok := Hex4(s[8:]); ok {
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					return dec, 12
				}
			}
		}
		return utf8.RuneError, 6
	}
	return 0, 0
}

// Hex4 decodes the four hex digits that b starts with.
func Hex4(b []byte) (rune, bool) {
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

// NumberEnd returns the index just after the JSON number that starts at
// d[p], and reports whether one does: an optional minus, an integer part
// without leading zeros, an optional fraction and an optional exponent. The
// byte after the number is the caller's to check.
func NumberEnd(d []byte, p int) (int, bool) {
	digits := func() bool {
		start := p
		for p < len(d) && '0' <= d[p] && d[p] <= '9' {
			p++
		}
		return p > start
	}
	if p < len(d) && d[p] == '-' {
		p++
	}
	switch {
	case p < len(d) && d[p] == '0':
		p++
	case !digits():
		return p, false
	}
	if p < len(d) && d[p] == '.' {
		p++
		if !digits() {
			return p, false
		}
	}
	if p < len(d) && (d[p] == 'e' || d[p] == 'E') {
		p++
		if p < len(d) && (d[p] == '+' || d[p] == '-') {
			p++
		}
		if !digits() {
			return p, false
		}
	}
	return p, true
}
