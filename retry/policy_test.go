package retry_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proxykit/proxy/retry"
)

var (
	errTransient = errors.New("transient")
	errOther     = errors.New("other")
)

// counter is an op that fails with the i-th error of errs on its i-th call
// (nil, or past the end of errs: success) and counts its calls.
type counter struct {
	errs  []error
	calls atomic.Int64
}

func (c *counter) op(context.Context) error {
	n := int(c.calls.Add(1))
	if n <= len(c.errs) {
		return c.errs[n-1]
	}
	return nil
}

func failing(n int, err error) *counter {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return &counter{errs: errs}
}

// noWait is a backoff that retries at once, for tests about counts.
var noWait = retry.WithBackoff(0, 0, 1)

func TestDoAttempts(t *testing.T) {
	tests := []struct {
		name      string
		failures  int
		attempts  int
		wantCalls int64
		wantErr   bool
	}{
		{"success at once", 0, 3, 1, false},
		{"success on second", 1, 3, 2, false},
		{"success on last", 2, 3, 3, false},
		{"attempts exhausted", 3, 3, 3, true},
		{"one attempt", 5, 1, 1, true},
		{"many attempts", 9, 10, 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := retry.New(retry.WithMaxAttempts(tt.attempts), noWait, retry.WithoutBudget())
			c := failing(tt.failures, errTransient)
			err := p.Do(t.Context(), c.op)
			if got := c.calls.Load(); got != tt.wantCalls {
				t.Errorf("Do() made %d calls, want %d", got, tt.wantCalls)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("Do() = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, errTransient) {
				t.Errorf("Do() = %v, want it to match %v", err, errTransient)
			}
		})
	}
}

func TestDoErrorJoinsAttempts(t *testing.T) {
	e1, e2, e3 := errors.New("e1"), errors.New("e2"), errors.New("e3")
	p := retry.New(noWait, retry.WithoutBudget())
	c := &counter{errs: []error{e1, e2, e3}}
	err := p.Do(t.Context(), c.op)
	for _, want := range []error{e1, e2, e3} {
		if !errors.Is(err, want) {
			t.Errorf("errors.Is(Do(), %v) = false, want true", want)
		}
	}
	var re *retry.Error
	if !errors.As(err, &re) {
		t.Fatalf("Do() = %T, want *retry.Error", err)
	}
	if re.Attempts != 3 {
		t.Errorf("Error.Attempts = %d, want 3", re.Attempts)
	}
	if got, want := err.Error(), "retry: 3 attempts: e1; e2; e3"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestDoNotRetried(t *testing.T) {
	type myError struct{ error }
	mine := &myError{errors.New("mine")}
	tests := []struct {
		name string
		err  error
		opts []retry.Option
	}{
		{"permanent", retry.Permanent(errOther), nil},
		{"permanent wrapped", fmt.Errorf("op: %w", retry.Permanent(errOther)), nil},
		{"op's own deadline", fmt.Errorf("op: %w", context.DeadlineExceeded), nil},
		{"op's own cancellation", context.Canceled, nil},
		{"narrowed by WithRetryable", errOther, []retry.Option{retry.WithRetryable(func(err error) bool {
			return errors.Is(err, errTransient)
		})}},
		{"typed error narrowed", mine, []retry.Option{retry.WithRetryable(func(err error) bool {
			var m *myError
			return !errors.As(err, &m)
		})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := retry.New(append([]retry.Option{noWait, retry.WithoutBudget()}, tt.opts...)...)
			c := failing(5, tt.err)
			err := p.Do(t.Context(), c.op)
			if got := c.calls.Load(); got != 1 {
				t.Errorf("Do() made %d calls, want 1", got)
			}
			if err != tt.err {
				t.Errorf("Do() = %#v, want the op's error %#v unchanged", err, tt.err)
			}
		})
	}
}

func TestDoIfClassifies(t *testing.T) {
	attemptTimeout := fmt.Errorf("attempt: %w", context.DeadlineExceeded)
	all := func(error) bool { return true }
	tests := []struct {
		name      string
		retryable func(error) bool
		opts      []retry.Option
		err       error
		wantCalls int64
	}{
		{"base retries the attempt's own timeout", all, nil, attemptTimeout, 3},
		{"base declines", func(error) bool { return false }, nil, errTransient, 1},
		{"WithRetryable narrows the base", all,
			[]retry.Option{retry.WithRetryable(func(err error) bool { return err != errOther })}, errOther, 1},
		{"WithRetryable cannot widen the base", func(err error) bool { return err != errOther },
			[]retry.Option{retry.WithRetryable(all)}, errOther, 1},
		{"permanent beats the classifiers", all, []retry.Option{retry.WithRetryable(all)},
			retry.Permanent(errTransient), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := retry.New(append([]retry.Option{noWait, retry.WithoutBudget()}, tt.opts...)...)
			c := failing(5, tt.err)
			if err := p.DoIf(t.Context(), tt.retryable, c.op); !errors.Is(err, tt.err) {
				t.Errorf("DoIf() = %v, want it to match %v", err, tt.err)
			}
			if got := c.calls.Load(); got != tt.wantCalls {
				t.Errorf("DoIf() made %d calls, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestDoBackoffDelays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var delays []time.Duration
		p := retry.New(
			retry.WithMaxAttempts(6),
			retry.WithBackoff(100*time.Millisecond, time.Second, 2),
			retry.WithJitter(0),
			retry.WithoutBudget(),
			retry.WithOnRetry(func(_ context.Context, _ int, _ error, d time.Duration) { delays = append(delays, d) }),
		)
		c := failing(6, errTransient)
		start := time.Now()
		if err := p.Do(t.Context(), c.op); !errors.Is(err, errTransient) {
			t.Fatalf("Do() = %v, want %v", err, errTransient)
		}
		want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
			800 * time.Millisecond, time.Second}
		if fmt.Sprint(delays) != fmt.Sprint(want) {
			t.Errorf("delays = %v, want %v", delays, want)
		}
		if got, want := time.Since(start), 2500*time.Millisecond; got != want {
			t.Errorf("Do() took %v of virtual time, want %v", got, want)
		}
	})
}

func TestDoJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const nominal = 100 * time.Millisecond
		var delays []time.Duration
		p := retry.New(
			retry.WithMaxAttempts(2),
			retry.WithBackoff(nominal, nominal, 1),
			retry.WithJitter(0.5),
			retry.WithoutBudget(),
			retry.WithOnRetry(func(_ context.Context, _ int, _ error, d time.Duration) { delays = append(delays, d) }),
		)
		for range 50 {
			_ = p.Do(t.Context(), failing(2, errTransient).op)
		}
		distinct := map[time.Duration]bool{}
		for _, d := range delays {
			if d < nominal/2 || d > nominal*3/2+1 {
				t.Errorf("delay %v outside [%v, %v]", d, nominal/2, nominal*3/2)
			}
			distinct[d] = true
		}
		if len(delays) != 50 || len(distinct) < 2 {
			t.Errorf("%d delays with %d distinct values, want 50 jittered ones", len(delays), len(distinct))
		}
	})
}

func TestDoOnRetry(t *testing.T) {
	e1, e2 := errors.New("e1"), errors.New("e2")
	var got []string
	p := retry.New(noWait, retry.WithoutBudget(), retry.WithMaxAttempts(4),
		retry.WithOnRetry(func(_ context.Context, attempt int, err error, d time.Duration) {
			got = append(got, fmt.Sprintf("%d:%v:%v", attempt, err, d))
		}))
	c := &counter{errs: []error{e1, e2, retry.Permanent(errOther)}}
	_ = p.Do(t.Context(), c.op)
	if want := []string{"1:e1:0s", "2:e2:0s"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("OnRetry calls = %v, want %v", got, want)
	}
}

// TestDoDeadlineCutsBackoff is the case: a 200 ms deadline and a 1 s
// backoff return at 200 ms, not 1 s, with context.DeadlineExceeded, after
// one call.
func TestDoDeadlineCutsBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := retry.New(retry.WithBackoff(time.Second, time.Second, 1), retry.WithJitter(0), retry.WithoutBudget())
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		c := failing(5, errTransient)
		start := time.Now()
		err := p.Do(ctx, c.op)
		if got, want := time.Since(start), 200*time.Millisecond; got != want {
			t.Errorf("Do() returned after %v of virtual time, want %v", got, want)
		}
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errTransient) {
			t.Errorf("Do() = %v, want it to match context.DeadlineExceeded and %v", err, errTransient)
		}
		if got := c.calls.Load(); got != 1 {
			t.Errorf("Do() made %d calls, want 1", got)
		}
		var re *retry.Error
		if !errors.As(err, &re) || re.Attempts != 1 {
			t.Errorf("Do() = %#v, want a *retry.Error with Attempts 1", err)
		}
	})
}

func TestDoCancelDuringBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := retry.New(retry.WithBackoff(time.Minute, time.Minute, 1), retry.WithoutBudget())
		ctx, cancel := context.WithCancel(t.Context())
		c := failing(5, errTransient)
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- p.Do(ctx, c.op) }()
		time.Sleep(50 * time.Millisecond)
		cancel()
		err := <-done
		if got, want := time.Since(start), 50*time.Millisecond; got != want {
			t.Errorf("Do() returned %v after start, want %v (at the cancel)", got, want)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Do() = %v, want it to match context.Canceled", err)
		}
		if got := c.calls.Load(); got != 1 {
			t.Errorf("Do() made %d calls, want 1", got)
		}
	})
}

func TestDoStopsWhenContextDone(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	p := retry.New(noWait, retry.WithoutBudget())
	calls := 0
	err := p.Do(ctx, func(context.Context) error {
		calls++
		cancel() // the caller gives up while the attempt fails
		return errTransient
	})
	if calls != 1 {
		t.Errorf("Do() made %d calls, want 1", calls)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errTransient) {
		t.Errorf("Do() = %v, want it to match context.Canceled and %v", err, errTransient)
	}
}

// TestDoReturnsOpsContextErrorUnchanged checks that when the op fails with
// the error of the very ctx that ended, nothing is added to it: the op's
// error is the whole story.
func TestDoReturnsOpsContextErrorUnchanged(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	p := retry.New(noWait, retry.WithoutBudget())
	var opErr error
	err := p.Do(ctx, func(ctx context.Context) error {
		cancel()
		opErr = fmt.Errorf("send: %w", ctx.Err())
		return opErr
	})
	if err != opErr {
		t.Errorf("Do() = %#v, want the op's own error %#v", err, opErr)
	}
}

func TestDoPanicPropagates(t *testing.T) {
	p := retry.New(noWait)
	defer func() {
		if r := recover(); r != "boom" {
			t.Errorf("recover() = %v, want boom", r)
		}
	}()
	_ = p.Do(t.Context(), func(context.Context) error { panic("boom") })
}

func TestZeroPolicy(t *testing.T) {
	var p retry.Policy
	c := failing(5, errTransient)
	if err := p.Do(t.Context(), c.op); err != errTransient {
		t.Errorf("Do() = %v, want %v", err, errTransient)
	}
	if got := c.calls.Load(); got != 1 {
		t.Errorf("zero Policy made %d calls, want 1", got)
	}
	if got := p.MaxAttempts(); got != 1 {
		t.Errorf("MaxAttempts() = %d, want 1", got)
	}
}

func TestPermanent(t *testing.T) {
	if retry.Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	err := fmt.Errorf("ctx: %w", retry.Permanent(errOther))
	if !retry.IsPermanent(err) || !errors.Is(err, errOther) {
		t.Errorf("IsPermanent(%v) = %v, errors.Is = %v, want true, true",
			err, retry.IsPermanent(err), errors.Is(err, errOther))
	}
	if retry.IsPermanent(errOther) {
		t.Errorf("IsPermanent(%v) = true, want false", errOther)
	}
	if got := retry.Permanent(errOther).Error(); got != errOther.Error() {
		t.Errorf("Permanent(err).Error() = %q, want %q", got, errOther.Error())
	}
}

func TestOptionsPanic(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"zero attempts", func() { retry.WithMaxAttempts(0) }},
		{"negative initial", func() { retry.WithBackoff(-1, time.Second, 2) }},
		{"max below initial", func() { retry.WithBackoff(time.Second, time.Millisecond, 2) }},
		{"multiplier below 1", func() { retry.WithBackoff(time.Millisecond, time.Second, 0.5) }},
		{"NaN multiplier", func() { retry.WithBackoff(time.Millisecond, time.Second, math.NaN()) }},
		{"negative jitter", func() { retry.WithJitter(-0.1) }},
		{"jitter above 1", func() { retry.WithJitter(1.5) }},
		{"nil classifier", func() { retry.WithRetryable(nil) }},
		{"nil hook", func() { retry.WithOnRetry(nil) }},
		{"nil clock", func() { retry.WithClock(nil) }},
		{"negative ratio", func() { retry.WithBudget(-0.1, 0) }},
		{"NaN ratio", func() { retry.WithBudget(math.NaN(), 1) }},
		{"infinite reserve", func() { retry.WithBudget(0.1, math.Inf(1)) }},
		{"empty budget", func() { retry.WithBudget(0, 0) }},
		{"nil option", func() { retry.New(nil) }},
		{"nil DoIf classifier", func() { _ = retry.New().DoIf(context.Background(), nil, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, ok := r.(string); !ok || !strings.HasPrefix(s, "retry: ") {
					t.Errorf("panic = %v, want a message starting with %q", r, "retry: ")
				}
			}()
			tt.f()
		})
	}
}
