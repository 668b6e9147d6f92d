package proxy_test

import (
	"context"
	"fmt"
	"time"

	"github.com/proxykit/proxy"
)

func ExampleTimeout() {
	// The service sees the deadline on its context; a service that honours
	// it returns an error matching context.DeadlineExceeded when it passes.
	reporting := proxy.ServiceFunc(func(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
		deadline, ok := ctx.Deadline()
		fmt.Println("deadline:", ok, "within 2s:", time.Until(deadline) <= 2*time.Second)
		return echo.Process(ctx, req)
	})
	svc := proxy.Chain(reporting, proxy.Timeout(2*time.Second))
	resp, err := svc.Process(ctx, aliceReq)
	fmt.Println(resp.RequestID, err)
	// Output:
	// deadline: true within 2s: true
	// req_1 <nil>
}
