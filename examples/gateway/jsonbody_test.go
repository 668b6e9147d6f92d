package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestCheckJSON(t *testing.T) {
	many := func(dupAt int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range 40 {
			if i > 0 {
				b.WriteString(",")
			}
			k := i
			if i == dupAt {
				k = 3
			}
			fmt.Fprintf(&b, `"k%d":%d`, k, i)
		}
		b.WriteString("}")
		return b.String()
	}
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"id":"a","user_id":"u","data":{"a":1,"b":[{"a":1},{"a":2}]}}`, true},
		{`{"a":{"x":1},"b":{"x":1}}`, true},
		{`{"a":[1,"a","a"],"b":"a"}`, true},
		{`{"a\"b":1,"a\\b":2}`, true},
		{many(-1), true},
		{`{"a":1,"a":2}`, false},
		{`{"a":1,"\u0061":2}`, false},
		{`{"x":{"a":[{"b":1,"b":2}]}}`, false},
		{`{"a":{"b":1},"c":{"d":2,"d":3}}`, false},
		{many(30), false},
		{`{"a":1}{"b":2}`, false},
		{`{"a":1`, false},
		{`[[[[[[[[[[1]]]]]]]]]]`, false},
		{`{"a":"\u0000"}`, false},
		{"{\"a\":\"\xff\"}", false},
	} {
		got := checkJSON([]byte(tc.body), 8)
		if (got == nil) != tc.ok {
			t.Errorf("checkJSON(%s) = %+v, want ok %v", tc.body, got, tc.ok)
		}
	}
}

func BenchmarkCheckJSON(b *testing.B) {
	body := []byte(`{"id":"req_123","user_id":"user_123","data":{"amount":100.50,"currency":"INR","items":[{"sku":"SKU-1","quantity":2}]}}`)
	b.ReportAllocs()
	for b.Loop() {
		if e := checkJSON(body, 32); e != nil {
			b.Fatal(e)
		}
	}
}
