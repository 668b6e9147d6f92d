package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/proxykit/proxy"
	"github.com/stretchr/testify/assert"
)

// TestWriteResponse holds the hand-written answer to what writeJSON, and
// so json.Marshal, writes: the same bytes, whether or not appendResponse
// takes the response.
func TestWriteResponse(t *testing.T) {
	for _, tc := range []struct {
		name string
		resp proxy.Response
		hand bool // appendResponse takes it
	}{
		{"plain", proxy.Response{RequestID: "load-1", Service: "inventory", Instance: "inventory-1", Data: json.RawMessage(`{"sku":"SKU-001","available":100}`)}, true},
		{"cached, no instance, no data", proxy.Response{RequestID: "r", Service: "s", Cached: true}, true},
		{"empty", proxy.Response{}, true},
		{"data a string", proxy.Response{RequestID: "r", Service: "s", Data: json.RawMessage(`"x"`)}, true},
		{"data not ASCII", proxy.Response{RequestID: "r", Service: "s", Data: json.RawMessage(`{"n":"café✓"}`)}, true},
		{"data with spaces", proxy.Response{RequestID: "r", Service: "s", Data: json.RawMessage(` { "a" : [1, 2] } `)}, false},
		{"data with a space in a string", proxy.Response{RequestID: "r", Service: "s", Data: json.RawMessage(`{"a":"b c"}`)}, false},
		{"data with HTML", proxy.Response{RequestID: "r", Service: "s", Data: json.RawMessage(`{"a":"<b>&"}`)}, false},
		{"data with a line separator", proxy.Response{RequestID: "r", Service: "s", Data: json.RawMessage("{\"a\":\"x\u2028y\u2029\"}")}, false},
		{"data invalid", proxy.Response{RequestID: "r", Service: "s", Data: json.RawMessage(`{"a":}`)}, false},
		{"id with a quote", proxy.Response{RequestID: `a"b`, Service: "s"}, false},
		{"id with a backslash", proxy.Response{RequestID: `a\b`, Service: "s"}, false},
		{"id with HTML", proxy.Response{RequestID: "<a>", Service: "s"}, false},
		{"id not ASCII", proxy.Response{RequestID: "é", Service: "s"}, false},
		{"id invalid UTF-8", proxy.Response{RequestID: "\xff", Service: "s"}, false},
		{"id with a control character", proxy.Response{RequestID: "a\x7fb\tc", Service: "s"}, false},
		{"instance with an ampersand", proxy.Response{RequestID: "r", Service: "s", Instance: "a&b"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, hand := appendResponse(nil, &tc.resp)
			assert.Equal(t, tc.hand, hand, "appendResponse(%+v) ok", tc.resp)
			got, want := httptest.NewRecorder(), httptest.NewRecorder()
			writeResponse(got, &tc.resp)
			writeJSON(want, http.StatusOK, &tc.resp)
			assert.Equal(t, want.Code, got.Code, "writeResponse(%+v) status", tc.resp)
			assert.Equal(t, want.Header(), got.Header(), "writeResponse(%+v) header", tc.resp)
			assert.Equal(t, want.Body.String(), got.Body.String(), "writeResponse(%+v) body", tc.resp)
			if b, err := json.Marshal(&tc.resp); err == nil {
				assert.Equal(t, string(b)+"\n", got.Body.String(), "writeResponse(%+v) body", tc.resp)
			}
		})
	}
}

// FuzzAppendResponse holds appendResponse to json.Marshal on any response
// it takes.
func FuzzAppendResponse(f *testing.F) {
	f.Add("load-1", "inventory", "inventory-1", []byte(`{"sku":"SKU-001","available":100}`), false)
	f.Add("r", "s", "", []byte(`[1,"<",true,null]`), true)
	f.Add("r", "s", "", []byte(` 1 `), true)
	f.Fuzz(func(t *testing.T, id, service, instance string, data []byte, cached bool) {
		resp := &proxy.Response{RequestID: id, Service: service, Instance: instance, Data: data, Cached: cached}
		got, ok := appendResponse(nil, resp)
		if !ok {
			return
		}
		want, err := json.Marshal(resp)
		if err != nil {
			t.Fatalf("appendResponse(%+v) took what json.Marshal refuses: %v", resp, err)
		}
		if string(got) != string(want)+"\n" {
			t.Fatalf("appendResponse(%+v) = %s, want %s", resp, got, want)
		}
	})
}
