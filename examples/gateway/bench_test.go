package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// benchConfig is a payment service with every layer on and instances that
// answer at once: what the gateway itself costs per call.
const benchConfig = `
server: {addr: 127.0.0.1:0}
auth: {anonymous_role: guest}
audit: {sink: off}
log: {level: info}
services:
  payment:
    roles: [guest]
    rate_limit: {rate: 1e9, burst: 1000000, key: user}
    bulkhead: {limit: 1000}
    retry: {attempts: 3, initial_backoff: 1ms, max_backoff: 1ms}
    breaker: {consecutive_failures: 5}
    instances: [{name: p1, demo: payment}, {name: p2, demo: payment}]
`

// BenchmarkProcess measures one process call through the gateway's
// handler, without the network: routing, auth, strict JSON, the stack, the
// demo payment (deduplicated after the first call) and the JSON answer.
func BenchmarkProcess(b *testing.B) {
	for _, audit := range []string{"off", "log"} {
		b.Run("audit="+audit, func(b *testing.B) {
			cfg, err := loadConfig([]byte(strings.Replace(benchConfig, "sink: off", "sink: "+audit, 1)), "bench.yaml")
			if err != nil {
				b.Fatal(err)
			}
			g, err := newGateway(cfg, newLogger(io.Discard, cfg.Log.Level))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = g.closeAll() })
			body := []byte(payment("req_123"))
			call := func() {
				req := httptest.NewRequest(http.MethodPost, "/api/v1/services/payment/process", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				g.handler.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("process = %d %s", rec.Code, rec.Body)
				}
			}
			b.ReportAllocs()
			b.Run("serial", func(b *testing.B) {
				for b.Loop() {
					call()
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						call()
					}
				})
			})
		})
	}
}
