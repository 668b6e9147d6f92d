package breaker_test

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/proxykit/proxy/breaker"
)

func succeedNow() error { return nil }

// TestFastPathKeepsFailuresApart runs one caller that alternates a failure
// and a success against callers that only succeed, with a threshold of two
// consecutive failures. In every order gobreaker could record them, the
// alternating caller's own success separates its failures, so the breaker
// must never open; it would if a success that follows a failure were left
// on the fast path, uncounted.
func TestFastPathKeepsFailuresApart(t *testing.T) {
	b := breaker.New(breaker.WithConsecutiveFailures(2))
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 2000 {
			_ = b.Do(fail)
			if err := b.Do(succeedNow); err != nil {
				t.Errorf("Do(ok) = %v, want nil", err)
				return
			}
		}
	})
	for range 3 {
		wg.Go(func() {
			for range 4000 {
				if err := b.Do(succeedNow); err != nil {
					t.Errorf("Do(ok) = %v, want nil: the breaker opened", err)
					return
				}
			}
		})
	}
	wg.Wait()
	wantState(t, b, breaker.Closed)
	if c := b.Counts(); c.TotalFailures != 2000 || c.TotalSuccesses != 14000 || c.Requests != 16000 {
		t.Errorf("Counts() = %+v, want 2000 failures and 14000 successes of 16000 requests", c)
	}
}

// TestFastPathSuccessEndingBetweenFailures starts a success on the fast
// path, lets a failure through while it runs, and ends it before a second
// failure: it ended between the two, so it resets the count, as it would
// have in gobreaker, and the breaker stays closed.
func TestFastPathSuccessEndingBetweenFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(breaker.WithConsecutiveFailures(2))
		release := make(chan struct{})
		done := make(chan error)
		go func() {
			done <- b.Do(func() error { <-release; return nil })
		}()
		synctest.Wait() // the slow success is running
		_ = b.Do(fail)
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("Do(slow ok) = %v, want nil", err)
		}
		_ = b.Do(fail)
		wantState(t, b, breaker.Closed)
		if c := b.Counts(); c.ConsecutiveFailures != 1 || c.TotalSuccesses != 1 {
			t.Errorf("Counts() = %+v, want 1 consecutive failure and 1 success", c)
		}
		_ = b.Do(fail)
		wantState(t, b, breaker.Open)
	})
}

// TestFastPathStaleFailure lets a call begin on the fast path while the
// breaker is closed and fail after the breaker has opened and turned
// half-open: the failure belongs to an earlier state and must not take the
// probe's place or reopen the breaker.
func TestFastPathStaleFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(breaker.WithConsecutiveFailures(1), breaker.WithCooldown(10*time.Second))
		release := make(chan struct{})
		done := make(chan error)
		go func() {
			done <- b.Do(func() error { <-release; return errBoom })
		}()
		synctest.Wait()
		_ = b.Do(fail)
		wantState(t, b, breaker.Open)
		time.Sleep(10*time.Second + time.Millisecond)
		wantState(t, b, breaker.HalfOpen)
		close(release)
		if err := <-done; err != errBoom {
			t.Fatalf("Do(stale failure) = %v, want %v", err, errBoom)
		}
		wantState(t, b, breaker.HalfOpen)
		if err := b.Do(succeedNow); err != nil {
			t.Fatalf("the probe: Do(ok) = %v, want nil (its place was free)", err)
		}
		wantState(t, b, breaker.Closed)
	})
}

// TestFastPathStaleSuccess lets a success begun in the closed state end
// while the breaker is half-open: it must not count as the probe's success.
func TestFastPathStaleSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(breaker.WithConsecutiveFailures(1), breaker.WithCooldown(10*time.Second), breaker.WithHalfOpenProbes(1))
		release := make(chan struct{})
		done := make(chan error)
		go func() {
			done <- b.Do(func() error { <-release; return nil })
		}()
		synctest.Wait()
		_ = b.Do(fail)
		time.Sleep(10*time.Second + time.Millisecond)
		wantState(t, b, breaker.HalfOpen)
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("Do(stale ok) = %v, want nil", err)
		}
		wantState(t, b, breaker.HalfOpen)
	})
}

// TestFastPathCounts checks the counts of successes that never reached
// gobreaker, and that they start again at every change of state.
func TestFastPathCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(breaker.WithConsecutiveFailures(3), breaker.WithCooldown(time.Second))
		for range 10 {
			_ = b.Do(succeedNow)
		}
		want := breaker.Counts{Requests: 10, TotalSuccesses: 10, ConsecutiveSuccesses: 10}
		if c := b.Counts(); c != want {
			t.Fatalf("Counts() after 10 successes = %+v, want %+v", c, want)
		}
		_ = b.Do(fail)
		want = breaker.Counts{Requests: 11, TotalSuccesses: 10, TotalFailures: 1, ConsecutiveFailures: 1}
		if c := b.Counts(); c != want {
			t.Fatalf("Counts() after a failure = %+v, want %+v", c, want)
		}
		_ = b.Do(succeedNow) // through gobreaker: it follows a failure
		_ = b.Do(succeedNow) // fast again
		want = breaker.Counts{Requests: 13, TotalSuccesses: 12, TotalFailures: 1, ConsecutiveSuccesses: 2}
		if c := b.Counts(); c != want {
			t.Fatalf("Counts() after two more successes = %+v, want %+v", c, want)
		}
		trip(t, b, 3)
		time.Sleep(time.Second + time.Millisecond)
		_ = b.Do(succeedNow) // the probe closes it
		wantState(t, b, breaker.Closed)
		if c := b.Counts(); c != (breaker.Counts{}) {
			t.Fatalf("Counts() after closing again = %+v, want zero", c)
		}
	})
}

// TestOpenRejectsUntilTheCooldownEnds checks the open state's rejections,
// which do not ask gobreaker until the cool-down has ended: a call at its
// last instant is rejected, the next one is a probe.
func TestOpenRejectsUntilTheCooldownEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(breaker.WithConsecutiveFailures(1), breaker.WithCooldown(10*time.Second))
		_ = b.Do(fail)
		time.Sleep(10 * time.Second)
		if err := b.Do(succeedNow); err != breaker.ErrOpen {
			t.Fatalf("Do() at the end of the cool-down = %v, want %v", err, breaker.ErrOpen)
		}
		time.Sleep(time.Nanosecond)
		if err := b.Do(succeedNow); err != nil {
			t.Fatalf("Do() after the cool-down = %v, want nil (a probe)", err)
		}
		wantState(t, b, breaker.Closed)
		_ = b.Do(fail) // open again, for another cool-down from now
		time.Sleep(5 * time.Second)
		if err := b.Do(succeedNow); err != breaker.ErrOpen {
			t.Fatalf("Do() in the second cool-down = %v, want %v", err, breaker.ErrOpen)
		}
	})
}

// TestFastPathStepAgedOut runs a long success on the fast path that began
// in a step of the window which has left it by the time the success ends,
// after a failure began: gobreaker would drop such a call, so it must not
// reset the count, and the next failure trips the breaker, as it trips a
// bare gobreaker given the same calls.
func TestFastPathStepAgedOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(breaker.WithConsecutiveFailures(2), breaker.WithInterval(10*time.Second))
		bare := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
			Interval: 10 * time.Second, BucketPeriod: time.Second, Timeout: time.Minute,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 2 },
		})
		bareDo := func(fn func() error) {
			_, _ = bare.Execute(func() (struct{}, error) { return struct{}{}, fn() })
		}
		time.Sleep(900 * time.Millisecond)
		slowOK := func() error { time.Sleep(9300 * time.Millisecond); return nil } // ends at 10.2s
		var wg sync.WaitGroup
		wg.Go(func() { _ = b.Do(slowOK) })
		wg.Go(func() { bareDo(slowOK) })
		time.Sleep(8600 * time.Millisecond) // 9.5s
		_ = b.Do(fail)
		bareDo(fail)
		wg.Wait()
		time.Sleep(100 * time.Millisecond) // 10.3s
		_ = b.Do(fail)
		bareDo(fail)
		if bare.State() != gobreaker.StateOpen {
			t.Fatalf("bare gobreaker: %v, want open (the test's premise)", bare.State())
		}
		wantState(t, b, breaker.Open)
	})
}

// TestClassifierPanicIsAFailure makes the classifier panic: gobreaker
// records the call as a failure, and the fast path must know it, so that
// the success after it goes to gobreaker and resets the count.
func TestClassifierPanicIsAFailure(t *testing.T) {
	errOdd := errors.New("odd")
	b := breaker.New(breaker.WithConsecutiveFailures(2), breaker.WithExcluded(func(err error) bool {
		if err == errOdd {
			panic("classifier bug")
		}
		return false
	}))
	if msg := panicMessage(func() { _ = b.Do(func() error { return errOdd }) }); msg != "classifier bug" {
		t.Fatalf("Do() panicked with %q, want the classifier's panic", msg)
	}
	for range 100 {
		_ = b.Do(succeedNow)
	}
	_ = b.Do(fail)
	wantState(t, b, breaker.Closed)
	if c := b.Counts(); c.ConsecutiveFailures != 1 || c.TotalFailures != 2 {
		t.Errorf("Counts() = %+v, want 2 failures, 1 of them consecutive", c)
	}
}
