package breaker_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/proxykit/proxy/breaker"
)

func Example() {
	b := breaker.New(
		breaker.WithName("payments"),
		breaker.WithConsecutiveFailures(3),
		breaker.WithCooldown(30*time.Second),
	)
	b.Subscribe(func(ev breaker.Event) {
		fmt.Printf("%s: %v -> %v\n", ev.Name, ev.From, ev.To)
	})

	charge := func() error { return errors.New("payment backend down") }
	for range 4 {
		err := b.Do(charge)
		fmt.Println(err, errors.Is(err, breaker.ErrOpen))
	}
	fmt.Println(b.State())
	// Output:
	// payment backend down false
	// payment backend down false
	// payments: closed -> open
	// payment backend down false
	// circuit breaker is open true
	// open
}

func ExampleExecute() {
	b := breaker.New()
	balance, err := breaker.Execute(b, func() (int, error) { return 420, nil })
	fmt.Println(balance, err)
	// Output: 420 <nil>
}

func ExampleExclude() {
	b := breaker.New(breaker.WithConsecutiveFailures(1))
	errBadAmount := errors.New("amount must be positive")

	// The service rejected the request itself: that says nothing about its
	// health, so the call does not count.
	err := b.Do(func() error { return breaker.Exclude(errBadAmount) })
	fmt.Println(err, b.State(), b.Counts().TotalExclusions)
	// Output: amount must be positive closed 1
}

func ExampleWithFailureRatio() {
	// Trip when half of the calls of the last minute failed, once there
	// have been at least four.
	b := breaker.New(breaker.WithFailureRatio(0.5, 4), breaker.WithInterval(time.Minute))
	for _, failed := range []bool{false, true, false, true} {
		_ = b.Do(func() error {
			if failed {
				return errors.New("503 from upstream")
			}
			return nil
		})
	}
	fmt.Println(b.State())
	// Output: open
}
