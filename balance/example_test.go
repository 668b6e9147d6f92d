package balance_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/proxykit/proxy/balance"
	"github.com/proxykit/proxy/internal/clocktest"
)

// backend stands for the caller's client of one instance.
type backend struct{ fail bool }

func (b *backend) Call() error {
	if b.fail {
		return errors.New("backend: 500")
	}
	return nil
}

func Example() {
	b := balance.New([]balance.Instance[*backend]{
		{Name: "payment-1", Value: &backend{}},
		{Name: "payment-2", Value: &backend{}},
	}, balance.NewRoundRobin())

	for range 3 {
		lease, err := b.Pick()
		if err != nil {
			fmt.Println(err) // balance.ErrNoHealthyInstance
			return
		}
		err = lease.Instance().Call()
		if err != nil {
			lease.Done(balance.Failure)
		} else {
			lease.Done(balance.Success)
		}
		fmt.Println(lease.Name(), err)
	}
	// Output:
	// payment-1 <nil>
	// payment-2 <nil>
	// payment-1 <nil>
}

// An instance that fails five calls in a row is ejected for 30 seconds, and
// comes back by itself when the time is up.
func ExampleBalancer_Subscribe() {
	clk := clocktest.New(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC))
	b := balance.New([]balance.Instance[*backend]{
		{Name: "payment-1", Value: &backend{}},
		{Name: "payment-2", Value: &backend{fail: true}},
	}, balance.NewRoundRobin(), balance.WithClock(clk))
	cancel := b.Subscribe(func(e balance.Event) { fmt.Println("event:", e) })
	defer cancel()

	call := func() {
		lease, _ := b.Pick()
		if lease.Instance().Call() != nil {
			lease.Done(balance.Failure)
		} else {
			lease.Done(balance.Success)
		}
		fmt.Println(lease.Name())
	}
	for range 10 {
		call()
	}
	call() // payment-2 is out
	clk.Advance(30 * time.Second)
	call()
	call()
	// Output:
	// payment-1
	// payment-2
	// payment-1
	// payment-2
	// payment-1
	// payment-2
	// payment-1
	// payment-2
	// payment-1
	// event: payment-2 ejected until 12:00:30
	// payment-2
	// payment-1
	// event: payment-2 returned
	// payment-2
	// payment-1
}

// LeastConnections sends a call to the instance with the fewest calls in
// flight.
func ExampleNewLeastConnections() {
	b := balance.New([]balance.Instance[string]{
		{Name: "a", Value: "a"},
		{Name: "b", Value: "b"},
		{Name: "c", Value: "c"},
	}, balance.NewLeastConnections())

	slow, _ := b.Pick() // a: a long call, still running
	quick, _ := b.Pick()
	quick.Done(balance.Success) // b: over at once
	for range 4 {
		l, _ := b.Pick()
		fmt.Print(l.Name(), " ")
		l.Done(balance.Success)
	}
	slow.Done(balance.Success)
	fmt.Println()
	// Output: c b b c
}

// A Snapshot is what a health page shows.
func ExampleBalancer_Snapshot() {
	b := balance.New([]balance.Instance[string]{
		{Name: "a", Value: "a"},
		{Name: "b", Value: "b"},
	}, balance.NewRoundRobin())
	l, _ := b.Pick()
	l.Done(balance.Failure)
	l, _ = b.Pick() // still in flight
	for _, s := range b.Snapshot() {
		fmt.Printf("%s eligible=%v in-flight=%d calls=%d failures=%d\n", s.Name, s.Eligible, s.InFlight, s.Calls, s.Failures)
	}
	l.Done(balance.Success)
	// Output:
	// a eligible=true in-flight=0 calls=1 failures=1
	// b eligible=true in-flight=1 calls=1 failures=0
}
