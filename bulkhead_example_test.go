package proxy_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/bulkhead"
)

func ExampleBulkhead() {
	// One call at a time for the whole service, no waiting for a place.
	bh := bulkhead.New(1)
	release := make(chan struct{})
	entered := make(chan struct{})
	slow := proxy.ServiceFunc(func(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
		close(entered)
		<-release
		return &proxy.Response{RequestID: req.ID}, nil
	})
	svc := proxy.Chain(slow, proxy.Bulkhead(bh, proxy.KeyByService))

	done := make(chan error)
	go func() {
		_, err := svc.Process(ctx, aliceReq)
		done <- err
	}()
	<-entered // the first call holds the only place
	_, err := svc.Process(ctx, aliceReq)
	fmt.Println(errors.Is(err, proxy.ErrOverloaded))
	close(release)
	fmt.Println(<-done)
	// Output:
	// true
	// <nil>
}
