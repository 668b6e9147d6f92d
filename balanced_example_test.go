package proxy_test

import (
	"fmt"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/balance"
)

func ExampleBalanced() {
	pool := balance.New([]balance.Instance[proxy.Service]{
		{Name: "payment-1", Value: echo},
		{Name: "payment-2", Value: echo},
		{Name: "payment-3", Value: echo},
	}, balance.NewRoundRobin())
	pool.Start()       // health checks, for instances with a Health method
	defer pool.Close() // stops them

	svc := proxy.Balanced(pool) // innermost: Chain(proxy.Balanced(pool), outer layers...)
	for range 4 {
		resp, err := svc.Process(ctx, aliceReq)
		fmt.Println(resp.Instance, err)
	}
	// Output:
	// payment-1 <nil>
	// payment-2 <nil>
	// payment-3 <nil>
	// payment-1 <nil>
}
