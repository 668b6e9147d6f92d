package redislimit_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/redislimit"
)

// Every replica of a service builds the same limiter on the same Redis, and
// together they admit 100 calls a second per user. While Redis is down, each
// of the three replicas admits a third of that on its own.
func Example() {
	client := redis.NewClient(&redis.Options{
		Addr:                  "localhost:6379",
		ContextTimeoutEnabled: true, // lets the limiter's timeout bound each call
	})
	defer client.Close()
	lim := redislimit.New(client, 100, 10,
		redislimit.WithFailureMode(redislimit.FailOpen), redislimit.WithReplicas(3))

	orders := proxy.ServiceFunc(func(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
		return &proxy.Response{RequestID: req.ID, Service: "order"}, nil
	})
	svc := proxy.Chain(orders, proxy.Limited(lim, proxy.KeyByUser))
	_, err := svc.Process(context.Background(), &proxy.Request{ID: "req_1", UserID: "alice"})
	var rl *proxy.RateLimitError
	if errors.As(err, &rl) {
		fmt.Println("retry after", rl.RetryAfter)
	}
}
