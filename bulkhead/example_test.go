package bulkhead_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/proxykit/proxy/bulkhead"
)

func Example() {
	bh := bulkhead.New(2) // two calls at once per key, no waiting
	ctx := context.Background()
	for i := range 3 {
		err := bh.Acquire(ctx, "inventory")
		fmt.Println(i, err, errors.Is(err, bulkhead.ErrFull))
	}
	bh.Release("inventory")
	fmt.Println(bh.Acquire(ctx, "inventory"))
	// Output:
	// 0 <nil> false
	// 1 <nil> false
	// 2 bulkhead: full true
	// <nil>
}
