package proxy_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/breaker"
	"github.com/proxykit/proxy/ratelimit"
	"github.com/proxykit/proxy/retry"
)

// BenchmarkStack measures the success path of the four core wrappers stacked
// in the recommended order, with and without the Timeout (whose context is
// the one allocation a call cannot avoid), against the direct call.
func BenchmarkStack(b *testing.B) {
	resp := &proxy.Response{RequestID: "req_1", Service: "echo"}
	direct := proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		return resp, nil
	})
	stack := func(withTimeout bool) proxy.Service {
		mw := []proxy.Middleware{
			// A real bucket per user that never runs dry.
			proxy.Limited(ratelimit.New(rate.Limit(1e9), 1<<30), proxy.KeyByUser),
			proxy.Retrying(retry.New()),
			proxy.Breaker(breaker.New()),
		}
		if withTimeout {
			mw = append(mw, proxy.Timeout(time.Second))
		}
		return proxy.Chain(direct, mw...)
	}
	for _, bc := range []struct {
		name string
		svc  proxy.Service
	}{
		{"direct", direct},
		{"limited+retrying+breaker", stack(false)},
		{"limited+retrying+breaker+timeout", stack(true)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.svc.Process(ctx, aliceReq); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := bc.svc.Process(ctx, aliceReq); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
