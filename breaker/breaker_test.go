package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proxykit/proxy/breaker"
	"github.com/sony/gobreaker/v2"
)

var errBoom = errors.New("boom")

func fail() error { return errBoom }

// trip makes n failing calls through b.
func trip(t *testing.T, b *breaker.Breaker, n int) {
	t.Helper()
	for i := range n {
		if err := b.Do(fail); !errors.Is(err, errBoom) {
			t.Fatalf("Do(failing) #%d = %v, want %v", i+1, err, errBoom)
		}
	}
}

// wantState fails the test unless b is in state want.
func wantState(t *testing.T, b *breaker.Breaker, want breaker.State) {
	t.Helper()
	if got := b.State(); got != want {
		t.Fatalf("State() = %v, want %v", got, want)
	}
}

// panicMessage returns the string f panics with, or "" if it returns.
func panicMessage(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}

func TestInvalidSettingsPanic(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"WithConsecutiveFailures(0)", func() { breaker.WithConsecutiveFailures(0) }},
		{"WithConsecutiveFailures(-1)", func() { breaker.WithConsecutiveFailures(-1) }},
		{"WithConsecutiveFailures(2^32)", func() { breaker.WithConsecutiveFailures(math.MaxUint32 + 1) }},
		{"WithFailureRatio(0, 10)", func() { breaker.WithFailureRatio(0, 10) }},
		{"WithFailureRatio(-0.5, 10)", func() { breaker.WithFailureRatio(-0.5, 10) }},
		{"WithFailureRatio(1.5, 10)", func() { breaker.WithFailureRatio(1.5, 10) }},
		{"WithFailureRatio(NaN, 10)", func() { breaker.WithFailureRatio(math.NaN(), 10) }},
		{"WithFailureRatio(0.5, 0)", func() { breaker.WithFailureRatio(0.5, 0) }},
		{"WithInterval(0)", func() { breaker.WithInterval(0) }},
		{"WithInterval(-1s)", func() { breaker.WithInterval(-time.Second) }},
		{"WithCooldown(0)", func() { breaker.WithCooldown(0) }},
		{"WithCooldown(-1s)", func() { breaker.WithCooldown(-time.Second) }},
		{"WithHalfOpenProbes(0)", func() { breaker.WithHalfOpenProbes(0) }},
		{"WithExcluded(nil)", func() { breaker.WithExcluded(nil) }},
		{"New(nil)", func() { breaker.New(nil) }},
		{"Do(nil)", func() { _ = breaker.New().Do(nil) }},
		{"Execute(nil)", func() { _, _ = breaker.Execute[int](breaker.New(), nil) }},
		{"Subscribe(nil)", func() { breaker.New().Subscribe(nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := panicMessage(tt.f)
			if !strings.HasPrefix(msg, "breaker: ") {
				t.Errorf("%s panicked with %q, want a panic starting with %q", tt.name, msg, "breaker: ")
			}
		})
	}
}

func TestStateString(t *testing.T) {
	tests := []struct {
		s    breaker.State
		want string
	}{
		{breaker.Closed, "closed"},
		{breaker.HalfOpen, "half-open"},
		{breaker.Open, "open"},
		{breaker.State(7), "State(7)"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("State(%d).String() = %q, want %q", uint8(tt.s), got, tt.want)
		}
	}
}

// TestStateMachine walks a breaker through its cycle, one step at a time:
// wait, make a call, check the call's error and the state after it.
func TestStateMachine(t *testing.T) {
	const cooldown = 10 * time.Second
	type step struct {
		wait     time.Duration
		call     func() error
		wantErr  error
		wantCall bool // whether the call reaches the function
		want     breaker.State
	}
	ok := func() error { return nil }
	steps := []step{
		{call: fail, wantErr: errBoom, wantCall: true, want: breaker.Closed},
		{call: ok, wantErr: nil, wantCall: true, want: breaker.Closed}, // a success resets the run
		{call: fail, wantErr: errBoom, wantCall: true, want: breaker.Closed},
		{call: fail, wantErr: errBoom, wantCall: true, want: breaker.Closed},
		{call: fail, wantErr: errBoom, wantCall: true, want: breaker.Open}, // third in a row trips
		{call: ok, wantErr: breaker.ErrOpen, want: breaker.Open},
		{wait: cooldown - time.Nanosecond, call: ok, wantErr: breaker.ErrOpen, want: breaker.Open},
		{wait: 2 * time.Nanosecond, call: ok, wantErr: nil, wantCall: true, want: breaker.HalfOpen}, // probe 1 of 2
		{call: ok, wantErr: nil, wantCall: true, want: breaker.Closed},                              // probe 2 closes
		{call: fail, wantErr: errBoom, wantCall: true, want: breaker.Closed},
		{call: fail, wantErr: errBoom, wantCall: true, want: breaker.Closed},
		{call: fail, wantErr: errBoom, wantCall: true, want: breaker.Open},
		{wait: cooldown + time.Nanosecond, call: ok, wantErr: nil, wantCall: true, want: breaker.HalfOpen},
		{call: fail, wantErr: errBoom, wantCall: true, want: breaker.Open}, // a failed probe reopens
		{call: ok, wantErr: breaker.ErrOpen, want: breaker.Open},
	}
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(
			breaker.WithConsecutiveFailures(3),
			breaker.WithCooldown(cooldown),
			breaker.WithHalfOpenProbes(2),
		)
		for i, s := range steps {
			time.Sleep(s.wait)
			called := false
			err := b.Do(func() error { called = true; return s.call() })
			if !errors.Is(err, s.wantErr) || (err == nil) != (s.wantErr == nil) {
				t.Fatalf("step %d: Do() = %v, want %v", i, err, s.wantErr)
			}
			if called != s.wantCall {
				t.Fatalf("step %d: Do() called the function = %v, want %v", i, called, s.wantCall)
			}
			wantState(t, b, s.want)
		}
	})
}

func TestHalfOpenRejectsBeyondProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(breaker.WithConsecutiveFailures(1), breaker.WithCooldown(time.Second))
		trip(t, b, 1)
		time.Sleep(2 * time.Second)
		err := b.Do(func() error {
			// The only probe is running: a second call must be turned away.
			if err := b.Do(fail); !errors.Is(err, breaker.ErrTooManyRequests) {
				t.Errorf("Do() during the probe = %v, want %v", err, breaker.ErrTooManyRequests)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Do(probe) = %v, want nil", err)
		}
		wantState(t, b, breaker.Closed)
	})
}

func TestSentinelsAreGobreakers(t *testing.T) {
	b := breaker.New(breaker.WithConsecutiveFailures(1))
	trip(t, b, 1)
	err := b.Do(fail)
	if !errors.Is(err, breaker.ErrOpen) || !errors.Is(err, gobreaker.ErrOpenState) {
		t.Errorf("Do() on an open breaker = %v, want %v and %v", err, breaker.ErrOpen, gobreaker.ErrOpenState)
	}
	if !errors.Is(breaker.ErrTooManyRequests, gobreaker.ErrTooManyRequests) {
		t.Errorf("errors.Is(ErrTooManyRequests, gobreaker.ErrTooManyRequests) = false, want true")
	}
}

func TestFailureRatio(t *testing.T) {
	tests := []struct {
		name  string
		opts  []breaker.Option
		calls string // s: success, f: failure
		want  breaker.State
	}{
		{"below ratio", []breaker.Option{breaker.WithFailureRatio(0.5, 4)}, "sssff", breaker.Closed},
		{"reaches ratio", []breaker.Option{breaker.WithFailureRatio(0.5, 4)}, "sssfff", breaker.Open},
		{"too few calls", []breaker.Option{breaker.WithFailureRatio(0.5, 4)}, "fff", breaker.Closed},
		{"enough calls", []breaker.Option{breaker.WithFailureRatio(0.5, 4)}, "ffff", breaker.Open},
		{"ratio only: no consecutive rule", []breaker.Option{breaker.WithFailureRatio(0.9, 100)}, "ffffffffff", breaker.Closed},
		{"both rules: consecutive first", []breaker.Option{breaker.WithFailureRatio(0.5, 100), breaker.WithConsecutiveFailures(3)}, "sfff", breaker.Open},
		{"both rules: ratio first", []breaker.Option{breaker.WithFailureRatio(0.5, 4), breaker.WithConsecutiveFailures(3)}, "fsfsfs" + "f", breaker.Open},
		{"default: five in a row", nil, "fffff", breaker.Open},
		{"default: four in a row", nil, "ffff", breaker.Closed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := breaker.New(tt.opts...)
			for _, c := range tt.calls {
				_ = b.Do(func() error {
					if c == 'f' {
						return errBoom
					}
					return nil
				})
			}
			if got := b.State(); got != tt.want {
				t.Errorf("State() after %q = %v, want %v", tt.calls, got, tt.want)
			}
		})
	}
}

func TestIntervalForgetsOldFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(breaker.WithConsecutiveFailures(3), breaker.WithInterval(10*time.Second))
		trip(t, b, 2)
		time.Sleep(11 * time.Second) // the two failures leave the window
		trip(t, b, 2)
		wantState(t, b, breaker.Closed)
		if got := b.Counts().TotalFailures; got != 2 {
			t.Errorf("Counts().TotalFailures = %d, want 2", got)
		}
		trip(t, b, 1)
		wantState(t, b, breaker.Open)
	})
}

// TestIntervalRollsInSteps checks that the counting window rolls a tenth of
// the interval at a time, rather than clearing all at once, and that a call
// that outlasts the window counts neither way, as WithInterval says.
func TestIntervalRollsInSteps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(breaker.WithFailureRatio(0.5, 3), breaker.WithInterval(10*time.Second))
		trip(t, b, 1)
		time.Sleep(9 * time.Second)
		trip(t, b, 1) // two calls: too few to trip
		time.Sleep(2 * time.Second)
		// The first failure has left the window, the second has not.
		if err := b.Do(func() error { return nil }); err != nil {
			t.Fatalf("Do(ok) = %v, want nil", err)
		}
		wantState(t, b, breaker.Closed)
		trip(t, b, 1) // three calls in the window, two of them failed
		wantState(t, b, breaker.Open)
	})
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(breaker.WithConsecutiveFailures(1), breaker.WithInterval(10*time.Second))
		_ = b.Do(func() error { time.Sleep(11 * time.Second); return errBoom })
		wantState(t, b, breaker.Closed) // it ended after its step left the window
		_ = b.Do(func() error { time.Sleep(9 * time.Second); return errBoom })
		wantState(t, b, breaker.Open)
	})
}

func TestExcluded(t *testing.T) {
	errMine := errors.New("caller's mistake")
	tests := []struct {
		name     string
		opts     []breaker.Option
		err      error
		counted  bool
		wantSame bool // Do returns the very error, not a copy
	}{
		{"canceled by default", nil, context.Canceled, false, true},
		{"wrapped canceled by default", nil, fmt.Errorf("call: %w", context.Canceled), false, true},
		{"deadline counts", nil, context.DeadlineExceeded, true, true},
		{"own failure counts", nil, errBoom, true, true},
		{"Exclude mark", nil, breaker.Exclude(errMine), false, false},
		{"classifier", []breaker.Option{breaker.WithExcluded(func(err error) bool { return errors.Is(err, errMine) })}, errMine, false, true},
		{"classifier replaces default", []breaker.Option{breaker.WithExcluded(func(err error) bool { return errors.Is(err, errMine) })}, context.Canceled, true, true},
		{"Exclude beats classifier", []breaker.Option{breaker.WithExcluded(func(error) bool { return false })}, breaker.Exclude(errBoom), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := breaker.New(tt.opts...) // one failure does not trip it: the counts stay
			err := b.Do(func() error { return tt.err })
			if !errors.Is(err, tt.err) && !errors.Is(tt.err, err) {
				t.Fatalf("Do() = %v, want %v", err, tt.err)
			}
			if tt.wantSame && err != tt.err {
				t.Errorf("Do() = %#v, want the function's own error %#v", err, tt.err)
			}
			c := b.Counts()
			if counted := c.TotalFailures == 1; counted != tt.counted {
				t.Errorf("Counts() = %+v: failure counted = %v, want %v", c, counted, tt.counted)
			}
			if excluded := c.TotalExclusions == 1; excluded == tt.counted {
				t.Errorf("Counts() = %+v: excluded = %v, want %v", c, excluded, !tt.counted)
			}
		})
	}
}

// TestClassifierRunsOutsideTheLock gives the breaker a classifier that
// reads the breaker's own state and counts: under gobreaker's mutex it would
// deadlock. A panicking call is a failure that never reaches the classifier.
func TestClassifierRunsOutsideTheLock(t *testing.T) {
	var (
		b       *breaker.Breaker
		seen    []error
		counted []breaker.Counts
	)
	b = breaker.New(breaker.WithConsecutiveFailures(2), breaker.WithExcluded(func(err error) bool {
		seen = append(seen, err)
		counted = append(counted, b.Counts())
		_ = b.State()
		return errors.Is(err, context.Canceled)
	}))
	if err := b.Do(func() error { return context.Canceled }); err != context.Canceled {
		t.Fatalf("Do(canceled) = %v, want %v itself", err, context.Canceled)
	}
	_ = panicMessage(func() { _ = b.Do(func() error { panic("crash") }) })
	if err := b.Do(fail); err != errBoom {
		t.Fatalf("Do(failing) = %v, want %v", err, errBoom)
	}
	if want := []error{context.Canceled, errBoom}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("classifier saw %v, want %v (not the panic)", seen, want)
	}
	if len(counted) != 2 || counted[0].Requests != 1 || counted[1].TotalFailures != 1 {
		t.Errorf("Counts() read by the classifier = %+v, want the call in flight, then the panic's failure", counted)
	}
	wantState(t, b, breaker.Open) // the panic and the last failure
}

func TestExcludeUnmarks(t *testing.T) {
	b := breaker.New()
	err := b.Do(func() error { return breaker.Exclude(errBoom) })
	if err != errBoom {
		t.Errorf("Do(Exclude(errBoom)) = %#v, want errBoom itself", err)
	}
	if got := breaker.Exclude(nil); got != nil {
		t.Errorf("Exclude(nil) = %v, want nil", got)
	}
	marked := breaker.Exclude(errBoom)
	if !errors.Is(marked, errBoom) || marked.Error() != errBoom.Error() {
		t.Errorf("Exclude(errBoom) = %q, want an error that is errBoom and reads %q", marked, errBoom)
	}
}

func TestCanceledProbeFreesItsPlace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(breaker.WithConsecutiveFailures(1), breaker.WithCooldown(time.Second))
		trip(t, b, 1)
		time.Sleep(2 * time.Second)
		if err := b.Do(func() error { return context.Canceled }); !errors.Is(err, context.Canceled) {
			t.Fatalf("Do(canceled probe) = %v, want %v", err, context.Canceled)
		}
		wantState(t, b, breaker.HalfOpen)
		if err := b.Do(func() error { return nil }); err != nil {
			t.Fatalf("Do(probe after canceled one) = %v, want nil", err)
		}
		wantState(t, b, breaker.Closed)
	})
}

func TestPanicCountsAndIsRaisedAgain(t *testing.T) {
	tests := []struct {
		name  string
		value any
	}{
		{"string", "kaboom"},
		{"error", errBoom},
		{"nil", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := breaker.New(breaker.WithConsecutiveFailures(1))
			got := func() (r any) {
				defer func() { r = recover() }()
				_ = b.Do(func() error { panic(tt.value) })
				return "no panic"
			}()
			want := tt.value
			if want == nil {
				var pe *runtime.PanicNilError
				if e, ok := got.(error); !ok || !errors.As(e, &pe) {
					t.Fatalf("Do(panicking) raised %#v, want a *runtime.PanicNilError", got)
				}
			} else if got != want {
				t.Fatalf("Do(panicking) raised %#v, want %#v", got, want)
			}
			if c := b.Counts(); c.TotalFailures != 0 || c.Requests != 0 {
				t.Errorf("Counts() after a trip = %+v, want cleared counts", c)
			}
			wantState(t, b, breaker.Open)
		})
	}
}

func TestPanicInProbeReopens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(breaker.WithConsecutiveFailures(1), breaker.WithCooldown(time.Second))
		trip(t, b, 1)
		time.Sleep(2 * time.Second)
		func() {
			defer func() { _ = recover() }()
			_ = b.Do(func() error { panic("probe crashed") })
		}()
		wantState(t, b, breaker.Open)
	})
}

func TestGoexitCountsAndExits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(breaker.WithConsecutiveFailures(2), breaker.WithCooldown(time.Second))
		goexit := func() {
			done := make(chan struct{})
			returned := false
			go func() {
				defer close(done)
				_ = b.Do(func() error { runtime.Goexit(); return nil })
				returned = true
			}()
			<-done
			if returned {
				t.Fatal("Do(Goexit) returned, want the goroutine to exit")
			}
		}
		goexit()
		if c := b.Counts(); c.TotalFailures != 1 {
			t.Fatalf("Counts() after a Goexit = %+v, want TotalFailures 1", c)
		}
		goexit()
		wantState(t, b, breaker.Open)

		// A probe that exits must not hold its place for ever.
		time.Sleep(2 * time.Second)
		goexit()
		wantState(t, b, breaker.Open)
		time.Sleep(2 * time.Second)
		if err := b.Do(func() error { return nil }); err != nil {
			t.Fatalf("Do(probe) = %v, want nil", err)
		}
		wantState(t, b, breaker.Closed)
	})
}

func TestExecute(t *testing.T) {
	b := breaker.New(breaker.WithConsecutiveFailures(1))
	got, err := breaker.Execute(b, func() (string, error) { return "pong", nil })
	if got != "pong" || err != nil {
		t.Fatalf("Execute(pong) = %q, %v, want %q, nil", got, err, "pong")
	}
	got, err = breaker.Execute(b, func() (string, error) { return "partial", errBoom })
	if got != "partial" || err != errBoom {
		t.Fatalf("Execute(failing) = %q, %v, want %q, %v", got, err, "partial", errBoom)
	}
	got, err = breaker.Execute(b, func() (string, error) { return "pong", nil })
	if got != "" || !errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("Execute() on an open breaker = %q, %v, want %q, %v", got, err, "", breaker.ErrOpen)
	}
}

func TestCountsAndName(t *testing.T) {
	b := breaker.New(breaker.WithName("payments"))
	if got := b.Name(); got != "payments" {
		t.Errorf("Name() = %q, want %q", got, "payments")
	}
	_ = b.Do(func() error { return nil })
	_ = b.Do(func() error { return nil })
	_ = b.Do(fail)
	_ = b.Do(func() error { return context.Canceled })
	want := breaker.Counts{Requests: 4, TotalSuccesses: 2, TotalFailures: 1, TotalExclusions: 1, ConsecutiveFailures: 1}
	if got := b.Counts(); got != want {
		t.Errorf("Counts() = %+v, want %+v", got, want)
	}
}
