package proxy_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/cache"
)

func ExampleCached() {
	store := cache.New[string, *proxy.Response](10_000, time.Minute)
	defer store.Close()
	svc := proxy.Chain(echo, proxy.Cached(store, proxy.KeyByRequest))

	first, _ := svc.Process(ctx, aliceReq)
	// The same question in other words: another ID, keys in another order.
	again := aliceReq.Clone()
	again.ID = "req_2"
	again.Data = json.RawMessage(`{"currency": "INR", "amount": 100.5}`)
	second, _ := svc.Process(ctx, again)

	fmt.Println(first.RequestID, first.Cached)
	fmt.Println(second.RequestID, second.Cached, string(second.Data))
	// Output:
	// req_1 false
	// req_2 true {"amount":100.5,"currency":"INR"}
}
