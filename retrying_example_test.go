package proxy_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/retry"
)

func ExampleRetrying() {
	// A service whose first call fails on a dropped connection.
	calls := 0
	flaky := proxy.ServiceFunc(func(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
		if calls++; calls == 1 {
			return nil, errors.New("connection reset")
		}
		return echo.Process(ctx, req)
	})
	// No wait between attempts, so the example does not sleep; a real
	// policy keeps the default jittered backoff.
	policy := retry.New(retry.WithMaxAttempts(3), retry.WithBackoff(0, 0, 1))
	svc := proxy.Chain(flaky, proxy.Retrying(policy))

	resp, err := svc.Process(ctx, aliceReq)
	fmt.Println(resp.RequestID, err, calls)
	// Output: req_1 <nil> 2
}

func ExampleRetrying_notRetried() {
	calls := 0
	strict := proxy.ServiceFunc(func(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
		calls++
		return nil, &proxy.InvalidRequestError{Field: "data.amount", Reason: "must be positive"}
	})
	svc := proxy.Chain(strict, proxy.Retrying(retry.New()))

	_, err := svc.Process(ctx, aliceReq)
	fmt.Println(calls, errors.Is(err, proxy.ErrInvalidRequest))
	fmt.Println(err)
	// Output:
	// 1 true
	// proxy: invalid request: data.amount: must be positive
}
