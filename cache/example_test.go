package cache_test

import (
	"context"
	"fmt"
	"time"

	"github.com/proxykit/proxy/cache"
)

func Example() {
	prices := cache.New[string, float64](1000, time.Minute)
	defer prices.Close()

	lookups := 0
	fetch := func(context.Context) (float64, error) { // the slow backend
		lookups++
		return 100.5, nil
	}
	for range 3 {
		price, err := prices.GetOrLoad(context.Background(), "INR", fetch)
		fmt.Println(price, err)
	}
	st := prices.Stats()
	fmt.Printf("backend lookups: %d, hits: %d, misses: %d\n", lookups, st.Hits, st.Misses)
	// Output:
	// 100.5 <nil>
	// 100.5 <nil>
	// 100.5 <nil>
	// backend lookups: 1, hits: 2, misses: 1
}

func ExampleCache_Get() {
	c := cache.New[string, int](2, time.Minute)
	c.Set("a", 1)
	c.Set("b", 2)
	c.Set("c", 3) // evicts "a", the least recently used
	_, okA := c.Get("a")
	c3, okC := c.Get("c")
	fmt.Println(okA, c3, okC, c.Len())
	// Output: false 3 true 2
}
