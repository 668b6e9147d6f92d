package proxy_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/breaker"
)

func ExampleBreaker() {
	br := breaker.New(breaker.WithName("payment"), breaker.WithConsecutiveFailures(2))
	br.Subscribe(func(ev breaker.Event) { fmt.Println("breaker", ev.Name, ev.From, "->", ev.To) })

	down := false // the payment backend, switched off half-way
	payment := proxy.ServiceFunc(func(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
		if down {
			return nil, errors.New("payment backend down")
		}
		return echo.Process(ctx, req)
	})
	svc := proxy.Chain(payment, proxy.Breaker(br))

	resp, err := svc.Process(ctx, aliceReq)
	fmt.Println(resp.RequestID, err)
	down = true
	for range 3 {
		_, err = svc.Process(ctx, aliceReq)
		fmt.Println(err)
	}
	fmt.Println(errors.Is(err, proxy.ErrCircuitOpen), errors.Is(err, breaker.ErrOpen))
	// Output:
	// req_1 <nil>
	// payment backend down
	// breaker payment closed -> open
	// payment backend down
	// proxy: circuit open: breaker "payment": circuit breaker is open
	// true true
}
