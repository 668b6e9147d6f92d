package deadline_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/proxykit/proxy/internal/deadline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errCause = errors.New("test: out of time")

type ctxKey struct{}

// isDone reports whether ch is closed, without waiting.
func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		c := deadline.New(context.Background(), time.Second, errCause)
		defer c.Finish()
		got, ok := c.Deadline()
		if !ok || !got.Equal(start.Add(time.Second)) {
			t.Fatalf("Deadline() = %v, %v, want %v, true", got, ok, start.Add(time.Second))
		}

		parent, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		c2 := deadline.New(parent, time.Second, errCause)
		defer c2.Finish()
		pd, _ := parent.Deadline()
		if got, _ := c2.Deadline(); !got.Equal(pd) {
			t.Fatalf("Deadline() under a sooner parent = %v, want the parent's %v", got, pd)
		}
	})
}

// TestExpiresWithoutDone checks that a Context nobody waits on still
// reports the deadline once it has passed, with its cause, and that Done
// then agrees.
func TestExpiresWithoutDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := deadline.New(context.Background(), time.Second, errCause)
		defer c.Finish()
		time.Sleep(999 * time.Millisecond)
		if err := c.Err(); err != nil {
			t.Fatalf("Err() before the deadline = %v, want nil", err)
		}
		if err := context.Cause(c); err != nil {
			t.Fatalf("Cause() before the deadline = %v, want nil", err)
		}
		time.Sleep(time.Millisecond)
		if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Err() at the deadline = %v, want DeadlineExceeded", err)
		}
		if !isDone(c.Done()) {
			t.Fatal("Done() not closed after Err() reported the deadline")
		}
		if err := context.Cause(c); err != errCause {
			t.Fatalf("Cause() = %v, want %v", err, errCause)
		}
	})
}

// TestParentDeadlineFirst gives the Context a parent whose deadline comes
// first (or at the same instant): the parent ends it, with the parent's
// cause, as with context.WithTimeoutCause, whether Err or Done notices it.
func TestParentDeadlineFirst(t *testing.T) {
	errParent := errors.New("test: the caller's deadline")
	for _, tt := range []struct {
		name     string
		parent   time.Duration
		armFirst bool
	}{
		{"sooner, Err", 10 * time.Millisecond, false},
		{"sooner, Done", 10 * time.Millisecond, true},
		{"same instant, Err", time.Second, false},
		{"same instant, Done", time.Second, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for range 20 { // the order of two timers at one instant is not fixed
				synctest.Test(t, func(t *testing.T) {
					parent, cancel := context.WithTimeoutCause(context.Background(), tt.parent, errParent)
					defer cancel()
					c := deadline.New(parent, time.Second, errCause)
					defer c.Finish()
					if tt.armFirst {
						_ = c.Done()
					}
					time.Sleep(tt.parent)
					_ = c.Err() // at the very instant, before the parent's timer may have run
					synctest.Wait()
					if err := context.Cause(c); err != errParent {
						t.Fatalf("Cause() = %v, want the parent's %v", err, errParent)
					}
				})
			}
		})
	}
}

func TestNilCauseIsDeadlineExceeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := deadline.New(context.Background(), time.Second, nil)
		defer c.Finish()
		time.Sleep(time.Second)
		if err := context.Cause(c); err != context.DeadlineExceeded {
			t.Fatalf("Cause() = %v, want DeadlineExceeded", err)
		}
	})
}

// TestDoneClosesAtDeadline checks that a waiter on Done is woken at the
// deadline, not before.
func TestDoneClosesAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		c := deadline.New(context.Background(), time.Second, errCause)
		defer c.Finish()
		<-c.Done()
		if waited := time.Since(start); waited != time.Second {
			t.Fatalf("Done() closed after %v, want 1s", waited)
		}
		if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Err() = %v, want DeadlineExceeded", err)
		}
		if err := context.Cause(c); err != errCause {
			t.Fatalf("Cause() = %v, want %v", err, errCause)
		}
	})
}

func TestParentCancelled(t *testing.T) {
	errParent := errors.New("test: parent gave up")
	for _, armFirst := range []bool{false, true} {
		name := "before Done"
		if armFirst {
			name = "after Done"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				parent, cancel := context.WithCancelCause(context.Background())
				c := deadline.New(parent, time.Hour, errCause)
				defer c.Finish()
				var done <-chan struct{}
				if armFirst {
					done = c.Done()
				}
				cancel(errParent)
				if err := c.Err(); !errors.Is(err, context.Canceled) {
					t.Fatalf("Err() = %v, want Canceled", err)
				}
				if err := context.Cause(c); err != errParent {
					t.Fatalf("Cause() = %v, want the parent's %v", err, errParent)
				}
				if done == nil {
					done = c.Done()
				}
				if !isDone(done) {
					t.Fatal("Done() not closed after the parent was cancelled")
				}
			})
		})
	}
}

func TestFinish(t *testing.T) {
	for _, armFirst := range []bool{false, true} {
		name := "never armed"
		if armFirst {
			name = "armed"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := deadline.New(context.Background(), time.Hour, errCause)
				var done <-chan struct{}
				if armFirst {
					done = c.Done()
					if isDone(done) {
						t.Fatal("Done() closed before Finish")
					}
				}
				c.Finish()
				c.Finish() // a second Finish is harmless
				if err := c.Err(); err != context.Canceled {
					t.Fatalf("Err() after Finish = %v, want Canceled", err)
				}
				if done == nil {
					done = c.Done()
				}
				if !isDone(done) {
					t.Fatal("Done() not closed after Finish")
				}
			})
		})
	}
}

// TestFinishAfterExpiry checks that a deadline noticed before Finish stays
// the reason the Context is done.
func TestFinishAfterExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := deadline.New(context.Background(), time.Second, errCause)
		time.Sleep(time.Second)
		if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Err() = %v, want DeadlineExceeded", err)
		}
		c.Finish()
		if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Err() after Finish = %v, want DeadlineExceeded still", err)
		}
	})
}

func TestValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent := context.WithValue(context.Background(), ctxKey{}, "v")
		c := deadline.New(parent, time.Second, errCause)
		defer c.Finish()
		if got := c.Value(ctxKey{}); got != "v" {
			t.Fatalf("Value() before Done = %v, want v", got)
		}
		_ = c.Done()
		if got := c.Value(ctxKey{}); got != "v" {
			t.Fatalf("Value() after Done = %v, want v", got)
		}
		if got := c.Value("other"); got != nil {
			t.Fatalf("Value(other) = %v, want nil", got)
		}
	})
}

// TestChildrenNeedNoGoroutine checks that contexts derived from a Context
// are cancelled with it, at its deadline and with its cause, and that the
// standard library links them without a goroutine per child.
func TestChildrenNeedNoGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := deadline.New(context.Background(), time.Second, errCause)
		defer c.Finish()
		before := runtime.NumGoroutine()
		children := make([]context.Context, 100)
		for i := range children {
			child, cancel := context.WithCancel(c)
			defer cancel()
			children[i] = child
		}
		if after := runtime.NumGoroutine(); after != before {
			t.Fatalf("goroutines went from %d to %d for 100 children", before, after)
		}
		fired := make(chan struct{})
		stop := context.AfterFunc(c, func() { close(fired) })
		defer stop()

		time.Sleep(time.Second)
		synctest.Wait()
		for i, child := range children {
			if err := context.Cause(child); err != errCause {
				t.Fatalf("child %d: Cause() = %v, want %v", i, err, errCause)
			}
		}
		if !isDone(fired) {
			t.Fatal("context.AfterFunc's function did not run at the deadline")
		}
	})
}

// TestConcurrentUse races every method against Finish: run under -race, and
// every goroutine must see the same Done channel.
func TestConcurrentUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for range 100 {
			c := deadline.New(context.Background(), time.Hour, errCause)
			chans := make([]<-chan struct{}, 8)
			var wg sync.WaitGroup
			for i := range chans {
				wg.Go(func() {
					_ = c.Err()
					_ = c.Value(ctxKey{})
					chans[i] = c.Done()
				})
			}
			wg.Go(c.Finish)
			wg.Wait()
			for i, ch := range chans {
				if ch != chans[0] {
					t.Fatalf("goroutine %d got another Done channel", i)
				}
				if !isDone(ch) {
					t.Fatalf("goroutine %d: Done() not closed after Finish", i)
				}
			}
			if err := c.Err(); err != context.Canceled {
				t.Fatalf("Err() = %v, want Canceled", err)
			}
		}
	})
}

func TestNilParentPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New(nil, ...) did not panic")
		}
	}()
	//lint:ignore SA1012 the nil parent is the point of the test
	deadline.New(nil, time.Second, nil)
}

// BenchmarkNew measures a Context that is made, checked and finished, as a
// service that never waits on Done uses it, next to context.WithTimeout.
func BenchmarkNew(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=deadline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c := deadline.New(ctx, time.Second, errCause)
			_ = c.Err()
			c.Finish()
		}
	})
	b.Run("impl=context", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, cancel := context.WithTimeoutCause(ctx, time.Second, errCause)
			_ = c.Err()
			cancel()
		}
	})
	b.Run("impl=deadline/armed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c := deadline.New(ctx, time.Second, errCause)
			_ = c.Done()
			c.Finish()
		}
	})
}
