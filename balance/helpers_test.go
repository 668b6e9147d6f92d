package balance_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/proxykit/proxy/balance"
	"github.com/proxykit/proxy/internal/clocktest"
)

var t0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// pool returns n instances named "i0", "i1", ... whose values are their
// names.
func pool(n int) []balance.Instance[string] {
	in := make([]balance.Instance[string], n)
	for i := range in {
		name := fmt.Sprintf("i%d", i)
		in[i] = balance.Instance[string]{Name: name, Value: name}
	}
	return in
}

// newClocked returns a round-robin Balancer over n instances on a fake clock
// at t0.
func newClocked(t *testing.T, n int, opts ...balance.Option) (*balance.Balancer[string], *clocktest.Clock) {
	t.Helper()
	clk := clocktest.New(t0)
	b := balance.New(pool(n), balance.NewRoundRobin(), append([]balance.Option{balance.WithClock(clk)}, opts...)...)
	return b, clk
}

// call picks an instance, reports r for it if it is name (Success for any
// other), and returns the name picked.
func call(t *testing.T, b *balance.Balancer[string], name string, r balance.Result) string {
	t.Helper()
	l, err := b.Pick()
	if err != nil {
		t.Fatalf("Pick() error = %v, want nil", err)
	}
	if l.Name() == name {
		l.Done(r)
	} else {
		l.Done(balance.Success)
	}
	return l.Name()
}

// report gives instance name the results rs, routing around the calls
// that land elsewhere. It fails the test if name is not picked within a
// few hundred calls.
func report(t *testing.T, b *balance.Balancer[string], name string, rs ...balance.Result) {
	t.Helper()
	for _, r := range rs {
		for tries := 0; ; tries++ {
			if tries == 500 {
				t.Fatalf("Pick() never returned %s in %d calls", name, tries)
			}
			if call(t, b, name, r) == name {
				break
			}
		}
	}
}

func repeat(r balance.Result, n int) []balance.Result {
	rs := make([]balance.Result, n)
	for i := range rs {
		rs[i] = r
	}
	return rs
}

func stateOf(t *testing.T, b *balance.Balancer[string], name string) balance.InstanceState {
	t.Helper()
	for _, s := range b.Snapshot() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("Snapshot() has no instance %s", name)
	return balance.InstanceState{}
}

// counts returns the number of ejected and of eligible instances.
func counts(b interface {
	Snapshot() []balance.InstanceState
}) (ejected, eligible int) {
	for _, s := range b.Snapshot() {
		if !s.EjectedUntil.IsZero() {
			ejected++
		}
		if s.Eligible {
			eligible++
		}
	}
	return ejected, eligible
}

// recorder collects the events a Balancer delivers.
type recorder struct {
	// mu guards events.
	mu     sync.Mutex
	events []balance.Event
}

func (r *recorder) add(e balance.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) strings() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.events))
	for i, e := range r.events {
		out[i] = e.String()
	}
	return out
}
