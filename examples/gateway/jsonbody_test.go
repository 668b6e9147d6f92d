package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
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
		{`{"a":{"a":1,"b":{"a":2}},"b":[{"a":1}]}`, true},
		{`{"a":{"b":1},"a":2}`, false},
		{`{"a":{"b":{"c":1},"c":2},"c":3}`, true},
		{`{"x":` + many(-1) + `,"y":` + many(-1) + `}`, true},
		{`{"x":` + many(-1) + `,"x":1}`, false},
		{`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":{"k1":1},"k17":17,"k1":1}`, false},
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

// TestCheckJSONAllocs holds checkJSON to its word: an ordinary body, nested
// and without escaped keys, is checked without allocating.
func TestCheckJSONAllocs(t *testing.T) {
	body := []byte(`{"id":"req_123","user_id":"user_123","data":{"amount":100.50,"items":[{"sku":"SKU-1","n":2},{"sku":"SKU-2","n":1}]}}`)
	if n := testing.AllocsPerRun(100, func() {
		if e := checkJSON(body, 32); e != nil {
			t.Fatal(e)
		}
	}); n != 0 {
		t.Errorf("checkJSON(%s) allocates %v times, want 0", body, n)
	}
}

// TestPlainEnvelope checks the envelope fast path against the strict
// decoder it stands in for: whenever it takes a body, it decodes it as the
// decoder does, and it leaves to the decoder every body the decoder would
// refuse or read differently.
func TestPlainEnvelope(t *testing.T) {
	for _, tc := range []struct {
		body string
		fast bool // the fast path takes it
	}{
		{`{}`, true},
		{`{"id":"a","user_id":"u","data":{"a":[1,{"b":"}"}],"c":"x\"y"}}`, true},
		{" {\n\t\"id\" : \"a\" ,\r\n \"data\" : [ 1 , 2 ] , \"user_id\":null }", true},
		{`{"data":null,"id":"","user_id":"u"}`, true},
		{`{"data":12.5e3,"id":null}`, true},
		{`{"data":"s","user_id":"ü"}`, true},
		{`{"data":true}`, true},
		{`{"ID":"a"}`, false},
		{`{"uſer_id":"a"}`, false},
		{`{"i\u0064":"a"}`, false},
		{`{"id":"a\"b"}`, false},
		{`{"user_id":"\u00e9"}`, false},
		{`{"id":1}`, false},
		{`{"id":{}}`, false},
		{`{"user_id":["u"]}`, false},
		{`{"id":"a","extra":1}`, false},
	} {
		body := []byte(tc.body)
		if e := checkJSON(body, 32); e != nil {
			t.Fatalf("checkJSON(%s) = %+v, want nil", body, e)
		}
		body = bytes.TrimSpace(body)
		got, ok := plainEnvelope(body)
		if ok != tc.fast {
			t.Errorf("plainEnvelope(%s) ok = %v, want %v", body, ok, tc.fast)
		}
		if !ok {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		var want envelope
		if err := dec.Decode(&want); err != nil {
			t.Errorf("plainEnvelope(%s) took a body the decoder refuses: %v", body, err)
			continue
		}
		if string(want.Data) == "null" {
			want.Data = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("plainEnvelope(%s) = %+v, want %+v", body, got, want)
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
