package rediscache_test

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/cache"
	"github.com/proxykit/proxy/rediscache"
)

// Each replica keeps a small memory cache in front of the shared Redis one:
// a response any replica cached is a hit on all of them.
func Example() {
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	defer client.Close()
	local := cache.New[string, *proxy.Response](10_000, 30*time.Second)
	defer local.Close()
	store := rediscache.New(local, client, 5*time.Minute)

	users := proxy.ServiceFunc(func(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
		return &proxy.Response{RequestID: req.ID, Service: "user"}, nil
	})
	svc := proxy.Chain(users, proxy.Cached(store, proxy.KeyByRequest))
	_, _ = svc.Process(context.Background(), &proxy.Request{ID: "req_1", UserID: "alice", Service: "user"})
}
