package breaker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/proxykit/proxy/breaker"
	"github.com/sony/gobreaker/v2"
)

// The breaker's overhead on the closed success path, against a bare
// gobreaker Execute configured alike: the breaker should cost no more than
// a tenth more, and allocate nothing.

func benchmarkSettings() gobreaker.Settings {
	return gobreaker.Settings{
		MaxRequests:  1,
		Interval:     time.Minute,
		BucketPeriod: 6 * time.Second,
		Timeout:      time.Minute,
		ReadyToTrip:  func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
		IsExcluded:   func(err error) bool { return err != nil && errors.Is(err, errBenchExcluded) },
	}
}

var errBenchExcluded = errors.New("excluded")

func succeed() error { return nil }

func BenchmarkDo(b *testing.B) {
	br := breaker.New()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := br.Do(succeed); err != nil {
				b.Fatalf("Do() = %v, want nil", err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := br.Do(succeed); err != nil {
					b.Errorf("Do() = %v, want nil", err)
					return
				}
			}
		})
	})
}

func BenchmarkExecute(b *testing.B) {
	br := breaker.New()
	call := func() (int, error) { return 42, nil }
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := breaker.Execute(br, call); err != nil {
				b.Fatalf("Execute() = %v, want nil", err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := breaker.Execute(br, call); err != nil {
					b.Errorf("Execute() = %v, want nil", err)
					return
				}
			}
		})
	})
}

// BenchmarkGobreakerExecute is the baseline: gobreaker alone.
func BenchmarkGobreakerExecute(b *testing.B) {
	cb := gobreaker.NewCircuitBreaker[struct{}](benchmarkSettings())
	call := func() (struct{}, error) { return struct{}{}, nil }
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cb.Execute(call); err != nil {
				b.Fatalf("Execute() = %v, want nil", err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := cb.Execute(call); err != nil {
					b.Errorf("Execute() = %v, want nil", err)
					return
				}
			}
		})
	})
}

// BenchmarkDoOpen measures the rejection of a call by an open breaker, the
// hot path while a service is down.
func BenchmarkDoOpen(b *testing.B) {
	br := breaker.New(breaker.WithConsecutiveFailures(1))
	_ = br.Do(func() error { return errors.New("down") })
	b.ReportAllocs()
	for b.Loop() {
		if err := br.Do(succeed); !errors.Is(err, breaker.ErrOpen) {
			b.Fatalf("Do() = %v, want %v", err, breaker.ErrOpen)
		}
	}
}
