package proxy_test

import (
	"testing"

	"github.com/proxykit/proxy"
)

// benchProcess runs the benchmark of one successful call of svc with req,
// serially ("serial", b.Loop) and from parallel goroutines ("parallel",
// b.RunParallel), reporting allocations: the shape of every wrapper's
// success-path benchmark.
func benchProcess(b *testing.B, svc proxy.Service, req *proxy.Request) {
	b.Helper()
	ctx := b.Context()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := svc.Process(ctx, req); err != nil {
				b.Fatalf("Process() = %v, want nil", err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := svc.Process(ctx, req); err != nil {
					b.Errorf("Process() = %v, want nil", err)
					return
				}
			}
		})
	})
}
