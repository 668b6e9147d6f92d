package proxy_test

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/proxykit/proxy"
)

func ExampleValidated() {
	svc := proxy.Chain(echo, proxy.Validated())

	_, err := svc.Process(ctx, aliceReq)
	fmt.Println(err)

	bad := aliceReq.Clone()
	bad.Data = json.RawMessage(`{"items":[{"name":"pen"},{"name":"ink\u0000"}]}`)
	_, err = svc.Process(ctx, bad)
	var invalid *proxy.InvalidRequestError
	if errors.As(err, &invalid) {
		fmt.Println(invalid.Field, "-", invalid.Reason)
	}
	fmt.Println(errors.Is(err, proxy.ErrInvalidRequest))
	// Output:
	// <nil>
	// data.items[1].name - contains a control character
	// true
}
