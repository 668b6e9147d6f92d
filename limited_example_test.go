package proxy_test

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/ratelimit"
)

func ExampleLimited() {
	lim := ratelimit.New(rate.Every(time.Minute), 1) // one request a minute per user
	svc := proxy.Chain(echo, proxy.Limited(lim, proxy.KeyByUser))

	_, first := svc.Process(ctx, aliceReq)
	_, second := svc.Process(ctx, aliceReq)
	fmt.Println(first, errors.Is(second, proxy.ErrRateLimited))

	var rle *proxy.RateLimitError
	if errors.As(second, &rle) {
		fmt.Println(rle.Key, "may retry after", rle.RetryAfter.Round(time.Second))
	}
	// Output:
	// <nil> true
	// alice may retry after 1m0s
}
