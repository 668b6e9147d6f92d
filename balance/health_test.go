package balance_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/proxykit/proxy/balance"
)

// checked is an instance whose health the test sets.
type checked struct {
	// mu guards the fields below.
	mu     sync.Mutex
	err    error // what Health returns
	block  bool  // whether Health waits for its ctx instead
	checks int
}

func (c *checked) Health(ctx context.Context) error {
	c.mu.Lock()
	c.checks++
	err, block := c.err, c.block
	c.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

func (c *checked) set(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
}

func (c *checked) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checks
}

var errUnhealthy = errors.New("unhealthy")

// checkedPool returns a Balancer over n checked instances named i0, i1, ...
func checkedPool(n int, opts ...balance.Option) (*balance.Balancer[*checked], []*checked) {
	cs := make([]*checked, n)
	in := make([]balance.Instance[*checked], n)
	for i := range cs {
		cs[i] = &checked{}
		in[i] = balance.Instance[*checked]{Name: pool(n)[i].Name, Value: cs[i]}
	}
	return balance.New(in, balance.NewRoundRobin(), opts...), cs
}

func healthy(b *balance.Balancer[*checked]) []bool {
	var out []bool
	for _, s := range b.Snapshot() {
		out = append(out, s.Healthy)
	}
	return out
}

// TestActiveHealth steps one instance through failed and passed checks, one
// check interval at a time, in a synctest bubble where the interval passes
// at once.
func TestActiveHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 5 * time.Second
		b, cs := checkedPool(2,
			balance.WithCheckInterval(interval),
			balance.WithUnhealthyThreshold(3),
			balance.WithHealthyThreshold(2),
		)
		var rec recorder
		defer b.Subscribe(rec.add)()
		cs[0].set(errUnhealthy)
		b.Start()
		defer b.Close()

		steps := []struct {
			err         error // Health's answer from this check on
			wantHealthy bool  // i0's health after the check
		}{
			{errUnhealthy, true}, // the check at Start
			{errUnhealthy, true},
			{errUnhealthy, false}, // third failure in a row
			{errUnhealthy, false},
			{nil, false},
			{nil, true}, // second success in a row
			{errUnhealthy, true},
			{nil, true}, // a success resets the failures
			{errUnhealthy, true},
			{errUnhealthy, true},
			{errUnhealthy, false},
		}
		for i, st := range steps {
			cs[0].set(st.err)
			if i > 0 {
				time.Sleep(interval)
			}
			synctest.Wait()
			if got := healthy(b); got[0] != st.wantHealthy || !got[1] {
				t.Fatalf("check %d: Healthy = %v, want [%v true]", i+1, got, st.wantHealthy)
			}
			s := b.Snapshot()[0]
			if !errors.Is(s.CheckErr, st.err) || (st.err == nil) != (s.CheckErr == nil) {
				t.Fatalf("check %d: CheckErr = %v, want %v", i+1, s.CheckErr, st.err)
			}
			if !st.wantHealthy {
				for range 4 {
					l, err := b.Pick()
					require.NoError(t, err)
					l.Done(balance.Success)
					if l.Name() != "i1" {
						t.Fatalf("check %d: Pick() = %s while i0 is down, want i1", i+1, l.Name())
					}
				}
			}
		}
		if got := cs[0].count(); got != len(steps) {
			t.Errorf("i0 checked %d times, want %d", got, len(steps))
		}
		want := []string{"i0 down: unhealthy", "i0 up", "i0 down: unhealthy"}
		require.Equal(t, want, rec.strings())
	})
}

// TestCloseStopsChecks checks that Close stops every check goroutine (the
// bubble and goleak would report one left behind), that no check runs
// after it, and that Start is a no-op when repeated or after Close.
func TestCloseStopsChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, cs := checkedPool(3, balance.WithCheckInterval(time.Second))
		b.Start()
		b.Start() // no second set of goroutines
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		for i, c := range cs {
			if got := c.count(); got != 2 {
				t.Fatalf("instance %d checked %d times after 1s, want 2", i, got)
			}
		}
		require.NoError(t, b.Close())
		require.NoError(t, b.Close())
		b.Start() // closed: does nothing
		time.Sleep(time.Hour)
		synctest.Wait()
		for i, c := range cs {
			if got := c.count(); got != 2 {
				t.Errorf("instance %d checked %d times after Close, want 2", i, got)
			}
		}
	})
}

// TestCheckTimeout checks that a Health call that does not answer counts as
// a failure once the check timeout passes, and that Close interrupts a
// check in progress without counting it.
func TestCheckTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, cs := checkedPool(2,
			balance.WithCheckInterval(10*time.Second),
			balance.WithCheckTimeout(time.Second),
			balance.WithUnhealthyThreshold(1),
		)
		cs[0].block = true
		b.Start()
		synctest.Wait() // i0's check waits for its deadline
		if got := b.Snapshot()[0]; !got.Healthy || got.CheckErr != nil {
			t.Fatalf("i0 during its first check: Healthy %v, CheckErr %v; want true, nil", got.Healthy, got.CheckErr)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := b.Snapshot()[0]; got.Healthy || !errors.Is(got.CheckErr, context.DeadlineExceeded) {
			t.Fatalf("i0 after the timeout: Healthy %v, CheckErr %v; want false, %v", got.Healthy, got.CheckErr, context.DeadlineExceeded)
		}
		time.Sleep(9 * time.Second) // the next check starts and blocks
		synctest.Wait()
		cs[0].set(nil)
		require.NoError(t, b.Close())
		if got := b.Snapshot()[0]; got.Healthy || !errors.Is(got.CheckErr, context.DeadlineExceeded) {
			t.Errorf("i0 after Close: Healthy %v, CheckErr %v; want the interrupted check not counted", got.Healthy, got.CheckErr)
		}
	})
}

// TestAllDownFailsFast marks every instance down and checks that Pick
// returns ErrNoHealthyInstance, and that the pool serves again when one
// comes back.
func TestAllDownFailsFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, cs := checkedPool(3, balance.WithCheckInterval(time.Second), balance.WithUnhealthyThreshold(1), balance.WithHealthyThreshold(1))
		for _, c := range cs {
			c.set(errUnhealthy)
		}
		b.Start()
		defer b.Close()
		synctest.Wait()
		if _, err := b.Pick(); !errors.Is(err, balance.ErrNoHealthyInstance) {
			t.Fatalf("Pick() with every instance down: error = %v, want %v", err, balance.ErrNoHealthyInstance)
		}
		for _, s := range b.Snapshot() {
			if s.Calls != 0 || s.InFlight != 0 {
				t.Errorf("%s: Calls %d, InFlight %d; want no call", s.Name, s.Calls, s.InFlight)
			}
		}
		cs[1].set(nil)
		time.Sleep(time.Second)
		synctest.Wait()
		l, err := b.Pick()
		require.NoError(t, err)
		l.Done(balance.Success)
		if l.Name() != "i1" {
			t.Errorf("Pick() = %s, want i1, the only one up", l.Name())
		}
	})
}

// TestDownBringsBackEjected checks that when active checks take down the
// last eligible instance while a healthy one is ejected, the ejected one
// returns early rather than leave the pool empty.
func TestDownBringsBackEjected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, cs := checkedPool(2,
			balance.WithCheckInterval(time.Second),
			balance.WithUnhealthyThreshold(1),
			balance.WithFailureThreshold(1),
			balance.WithMaxEjectionPercent(50),
		)
		var rec recorder
		defer b.Subscribe(rec.add)()
		l, err := b.Pick()
		require.NoError(t, err)
		l.Done(balance.Failure) // ejects i0 for 30s
		b.Start()
		defer b.Close()
		cs[1].set(errUnhealthy)
		time.Sleep(time.Second)
		synctest.Wait()
		l, err = b.Pick()
		require.NoError(t, err)
		l.Done(balance.Success)
		if l.Name() != "i0" {
			t.Errorf("Pick() = %s, want i0 back early", l.Name())
		}
		want := []string{"i0 ejected", "i1 down", "i0 returned"}
		var got []string
		for _, e := range rec.events {
			got = append(got, e.Instance+" "+e.Kind.String())
		}
		require.Equal(t, want, got)
	})
}
