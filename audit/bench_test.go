package audit_test

import (
	"bytes"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/proxykit/proxy/audit"
)

func BenchmarkFileSinkWrite(b *testing.B) {
	e := testEvent(1)
	b.Run("serial", func(b *testing.B) {
		s, _ := openLog(b)
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			if err := s.Write(b.Context(), e); err != nil {
				b.Fatal(err)
			}
			n++
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("parallel", func(b *testing.B) {
		s, _ := openLog(b)
		b.ReportAllocs()
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.Write(b.Context(), e); err != nil {
					b.Error(err)
					return
				}
				n.Add(1)
			}
		})
		b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "events/s")
	})
}

func BenchmarkSlogSinkWrite(b *testing.B) {
	s := audit.NewSlog(slog.New(slog.NewJSONHandler(io.Discard, nil)))
	e := testEvent(1)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Write(b.Context(), e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	data := readFile(b, writeLog(b, 1000))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := audit.Verify(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRedactorFields(b *testing.B) {
	r := audit.NewRedactor([]string{"amount", "currency", "card"}, []string{"number"})
	data := []byte(`{"amount":100.50,"currency":"INR","card":{"number":"4111111111111111","brand":"visa"},"note":"x"}`)
	b.ReportAllocs()
	for b.Loop() {
		if r.Fields(data) == nil {
			b.Fatal("Fields() = nil")
		}
	}
}
