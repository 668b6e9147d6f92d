package bench_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	"github.com/go-kit/kit/sd/lb"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/balance"
)

// benchInstances is the size of the balanced pools.
const benchInstances = 5

func newPool(picker balance.Picker) *balance.Balancer[proxy.Service] {
	instances := make([]balance.Instance[proxy.Service], benchInstances)
	for i := range instances {
		instances[i] = balance.Instance[proxy.Service]{Name: "payment-" + strconv.Itoa(i+1), Value: backend}
	}
	return balance.New(instances, picker)
}

// BenchmarkBalanced measures picking one of five instances and reporting
// the call's result, with each of our pickers, next to go-kit's round
// robin (which has no health or result bookkeeping).
func BenchmarkBalanced(b *testing.B) {
	pickers := []struct {
		name   string
		picker balance.Picker
	}{
		{"roundrobin", balance.NewRoundRobin()},
		{"random", balance.NewRandom()},
		{"leastconn", balance.NewLeastConnections()},
		{"p2c", balance.NewP2C()},
	}
	for _, p := range pickers {
		b.Run("picker="+p.name, func(b *testing.B) {
			run(b, "ours", viaService(proxy.Balanced(newPool(p.picker))))
			if p.name == "roundrobin" {
				eps := make(sd.FixedEndpointer, benchInstances)
				for i := range eps {
					eps[i] = kitBackend
				}
				rr := lb.NewRoundRobin(eps)
				run(b, "gokit", viaEndpoint(func(ctx context.Context, request any) (any, error) {
					e, err := rr.Endpoint()
					if err != nil {
						return nil, err
					}
					return e(ctx, request)
				}))
			}
		})
	}
	var _ endpoint.Endpoint = kitBackend
}
