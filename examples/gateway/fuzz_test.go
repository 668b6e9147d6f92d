package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
)

// fuzzConfig has backends that always succeed, so that any 5xx answer would
// be the gateway's fault.
var fuzzConfig = testServer + testAuth(true) + `
services:
  payment:
    roles: [guest, client, admin]
    retry: {attempts: 2, initial_backoff: 1ms, max_backoff: 1ms}
    breaker: {consecutive_failures: 5}
    bulkhead: {limit: 1000}
    instances: [{name: payment-1, demo: payment}, {name: payment-2, demo: payment}]
  inventory:
    roles: [guest]
    instances: [{name: inventory-1, demo: inventory}]
  order:
    roles: [client]
    instances: [{name: order-1, demo: order}]
`

// FuzzProcess sends arbitrary bodies and headers to the process endpoint:
// the gateway must never panic, must always answer with JSON, and must never
// answer 5xx, except 504 to a caller that asked for a deadline of its own.
func FuzzProcess(f *testing.F) {
	cfg, err := loadConfig([]byte(fuzzConfig), "fuzz.yaml")
	if err != nil {
		f.Fatal(err)
	}
	g, err := newGateway(cfg, newLogger(&bytes.Buffer{}, "error"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = g.closeAll() })

	for _, seed := range []struct {
		service, body, contentType, auth, requestID, idem, timeout string
	}{
		{"payment-service", payment("req_123"), "application/json", "", "", "", ""},
		{"payment", payment("req_1"), "application/json; charset=utf-8", "Bearer " + clientToken, "trace-1", "idem-1", ""},
		{"payment", payment("req_2"), "application/json", "Bearer " + outsiderToken, "", "", ""},
		{"order", `{"id":"o1","user_id":"u","data":{"action":"create","currency":"INR","items":[{"sku":"SKU-1","quantity":1,"unit_price":1}]}}`, "", "Bearer " + clientToken, "", "", "5000"},
		{"inventory", `{"id":"i1","user_id":"u","data":{"action":"reserve","sku":"SKU-001","quantity":1}}`, "application/json", "", "", "", ""},
		{"inventory", `{"id":"i1","user_id":"u","data":{"action":"reserve","sku":"SKU-001","quantity":1e400}}`, "application/json", "", "", "", ""},
		{"payment", `{"id":"r","user_id":"u","data":{"amount":1,"currency":"INR"}}{}`, "text/plain", "Basic x", "bad id", "", "-1"},
		{"payment", `{"id":"r","id":"r","data":[[[[[[[[[[[[1]]]]]]]]]]]}`, "application/json", "Bearer", "", "", "1"},
		{"nope", `null`, "application/json", "", "", "", ""},
		{"payment", "\xff\xfe", "application/json", "", "", "", ""},
		{"payment", `{"id":"\ud800","user_id":"u","data":{"amount":"1"}}`, "application/json", "", "", "", ""},
	} {
		f.Add(seed.service, []byte(seed.body), seed.contentType, seed.auth, seed.requestID, seed.idem, seed.timeout)
	}

	f.Fuzz(func(t *testing.T, service string, body []byte, contentType, auth, requestID, idem, timeout string) {
		target := "/api/v1/services/" + url.PathEscape(service) + "/process"
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, target, bytes.NewReader(body))
		set := func(k, v string) {
			if v != "" {
				req.Header[k] = []string{v}
			}
		}
		set("Content-Type", contentType)
		set("Authorization", auth)
		set(requestIDHeader, requestID)
		set("Idempotency-Key", idem)
		set(timeoutHeader, timeout)
		rec := httptest.NewRecorder()
		g.handler.ServeHTTP(rec, req)

		askedDeadline := false
		if ms, err := strconv.ParseInt(timeout, 10, 64); err == nil && ms > 0 {
			askedDeadline = true
		}
		if rec.Code >= 500 && (rec.Code != http.StatusGatewayTimeout || !askedDeadline) {
			t.Fatalf("POST %s = %d %s, want < 500", target, rec.Code, rec.Body.Bytes())
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("POST %s = %d with a body that is not JSON: %q", target, rec.Code, rec.Body.Bytes())
		}
	})
}
