package retry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/proxykit/proxy/retry"
)

func ExamplePolicy_Do() {
	// Retry at once: a real policy keeps the default jittered backoff.
	p := retry.New(retry.WithMaxAttempts(3), retry.WithBackoff(0, 0, 1))
	calls := 0
	err := p.Do(context.Background(), func(ctx context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("connection reset")
		}
		return nil
	})
	fmt.Println(calls, err)
	// Output: 3 <nil>
}

func ExamplePolicy_Do_giveUp() {
	p := retry.New(retry.WithMaxAttempts(2), retry.WithBackoff(0, 0, 1))
	errDown := errors.New("backend down")
	err := p.Do(context.Background(), func(ctx context.Context) error {
		return errDown
	})
	var re *retry.Error
	fmt.Println(errors.Is(err, errDown), errors.As(err, &re), re.Attempts)
	fmt.Println(err)
	// Output:
	// true true 2
	// retry: 2 attempts: backend down; backend down
}

func ExamplePermanent() {
	p := retry.New(retry.WithBackoff(0, 0, 1))
	errBadInput := errors.New("bad input")
	calls := 0
	err := p.Do(context.Background(), func(ctx context.Context) error {
		calls++
		return retry.Permanent(errBadInput) // no second try can fix it
	})
	fmt.Println(calls, errors.Is(err, errBadInput))
	// Output: 1 true
}

func ExampleWithOnRetry() {
	retries := 0 // a metrics counter, say
	p := retry.New(
		retry.WithBackoff(0, 0, 1), // retry at once, so the example does not sleep
		retry.WithOnRetry(func(_ context.Context, attempt int, err error, delay time.Duration) {
			retries++
			fmt.Printf("attempt %d failed (%v), retrying in %v\n", attempt, err, delay)
		}),
	)
	calls := 0
	err := p.Do(context.Background(), func(ctx context.Context) error {
		if calls++; calls == 1 {
			return errors.New("timeout")
		}
		return nil
	})
	fmt.Println(err, retries)
	// Output:
	// attempt 1 failed (timeout), retrying in 0s
	// <nil> 1
}
