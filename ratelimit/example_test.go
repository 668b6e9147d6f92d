package ratelimit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/proxykit/proxy/ratelimit"
)

// exampleClock is a clock the examples move by hand, so that their output
// does not depend on how fast they run.
type exampleClock struct{ now time.Time }

func (c *exampleClock) Now() time.Time { return c.now }

func ExampleLimiter() {
	clk := &exampleClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	lim := ratelimit.New(1, 2, ratelimit.WithClock(clk)) // 1 call/s per key, bursts of 2

	fmt.Println(lim.Allow("alice"), lim.Allow("alice"), lim.Allow("alice")) // the burst, then no more
	fmt.Println(lim.Allow("bob"))                                           // bob has a bucket of his own

	clk.now = clk.now.Add(time.Second)
	fmt.Println(lim.Allow("alice"), lim.Allow("alice")) // one token refilled
	// Output:
	// true true false
	// true
	// true false
}

func ExampleLimiter_Take() {
	clk := &exampleClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	lim := ratelimit.New(4, 1, ratelimit.WithClock(clk)) // a token every 250ms

	lim.Take("alice")
	if ok, retryAfter := lim.Take("alice"); !ok {
		fmt.Println("rate limited, retry after", retryAfter)
	}
	clk.now = clk.now.Add(100 * time.Millisecond)
	ok, retryAfter := lim.Take("alice")
	fmt.Println(ok, retryAfter)
	// Output:
	// rate limited, retry after 250ms
	// false 150ms
}

func ExampleLimiter_Limit() {
	clk := &exampleClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	// One call a second per key; a call may wait up to 100ms for its token.
	lim := ratelimit.New(1, 1, ratelimit.WithClock(clk), ratelimit.WithMaxWait(100*time.Millisecond))

	fmt.Println(lim.Limit(context.Background(), "alice"))
	// The next token is a second away, beyond the bound: refused at once.
	fmt.Println(lim.Limit(context.Background(), "alice"))
	// Output:
	// true 0s <nil>
	// false 1s <nil>
}
