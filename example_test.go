package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/proxykit/proxy"
)

// Fixtures shared by the examples of this package.
var (
	ctx = context.Background()

	echo = proxy.ServiceFunc(func(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
		return &proxy.Response{RequestID: req.ID, Service: req.Service, Data: req.Data}, nil
	})

	aliceReq = &proxy.Request{
		ID:      "req_1",
		UserID:  "alice",
		Service: "echo",
		Data:    json.RawMessage(`{"amount":100.5,"currency":"INR"}`),
	}
)

// tracing returns a middleware that prints when a call enters and leaves it.
func tracing(name string) proxy.Middleware {
	return func(next proxy.Service) proxy.Service {
		return proxy.ServiceFunc(func(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
			fmt.Println("enter", name)
			defer fmt.Println("leave", name)
			return next.Process(ctx, req)
		})
	}
}

func ExampleChain() {
	svc := proxy.Chain(echo, tracing("outer"), tracing("inner"))
	resp, err := svc.Process(ctx, aliceReq)
	fmt.Println(resp.RequestID, err)
	// Output:
	// enter outer
	// enter inner
	// leave inner
	// leave outer
	// req_1 <nil>
}
