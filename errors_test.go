package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/audit"
	"github.com/proxykit/proxy/balance"
	"github.com/proxykit/proxy/breaker"
	"github.com/proxykit/proxy/bulkhead"
	"github.com/proxykit/proxy/retry"
)

// The tests of this file send errors through every wrapper of the package,
// stacked in the recommended order, and check that errors.Is and errors.As
// still find the proxy's sentinels and typed errors and the caller's own
// errors, the very values the service returned.

// errorsOwn is a sentinel error of the caller's own service.
var errorsOwn = errors.New("insufficient funds")

// errorsCodedError is a typed error of the caller's own service.
type errorsCodedError struct{ Code string }

func (e *errorsCodedError) Error() string { return "card declined: " + e.Code }

// errorsStack is every merged wrapper around a pool of one instance, in the
// recommended order: Audited (failing open, over a sink that fails every
// write), Bulkhead, Retrying, Breaker, Timeout, Balanced.
type errorsStack struct {
	svc     proxy.Service
	br      *breaker.Breaker
	bh      *bulkhead.Bulkhead
	calls   atomic.Int64  // calls that reached the instance
	dropped atomic.Uint64 // events the audit sink failed to record
}

// errorsFailingSink is an audit sink whose every write fails.
type errorsFailingSink struct{}

var errErrorsSink = errors.New("audit sink: disk full")

func (errorsFailingSink) Write(context.Context, audit.Event) error { return errErrorsSink }
func (errorsFailingSink) Close() error                             { return nil }

// newErrorsStack builds the stack around inst, in a pool whose active health
// checks run once a second and mark the instance down at the first failed
// check. It must be called in a synctest bubble.
func newErrorsStack(t *testing.T, inst proxy.ServiceFunc, health func() error, sink audit.Sink, auditOpts ...proxy.AuditOption) *errorsStack {
	t.Helper()
	s := &errorsStack{
		br: breaker.New(breaker.WithName("payment"), breaker.WithConsecutiveFailures(10)),
		bh: bulkhead.New(1),
	}
	counted := proxy.ServiceFunc(func(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
		s.calls.Add(1)
		return inst(ctx, req)
	})
	var member proxy.Service = counted
	if health != nil {
		member = errorsChecked{counted, health}
	}
	pool := balance.New([]balance.Instance[proxy.Service]{{Name: "payment-1", Value: member}},
		balance.NewRoundRobin(),
		balance.WithCheckInterval(time.Second),
		balance.WithUnhealthyThreshold(1))
	pool.Start()
	t.Cleanup(func() { _ = pool.Close() })
	if sink == nil {
		sink = errorsFailingSink{}
		auditOpts = append(auditOpts, proxy.WithAuditFailOpen(&s.dropped))
	}
	s.svc = proxy.Chain(proxy.Balanced(pool),
		proxy.Audited(sink, auditOpts...),
		proxy.Bulkhead(s.bh, nil),
		proxy.Retrying(retry.New(retry.WithMaxAttempts(3), retry.WithBackoff(time.Millisecond, time.Millisecond, 1),
			retry.WithoutBudget())),
		proxy.Breaker(s.br),
		proxy.Timeout(time.Second),
	)
	return s
}

// errorsChecked is an instance with a Health method.
type errorsChecked struct {
	proxy.Service
	health func() error
}

func (c errorsChecked) Health(context.Context) error { return c.health() }

// errorsCheck holds what one error must still say after the whole stack.
type errorsCheck struct {
	is      []error // sentinels and values errors.Is must find
	coded   *errorsCodedError
	limit   *proxy.RateLimitError
	invalid *proxy.InvalidRequestError
	outcome proxy.Outcome
}

// check fails the test unless err matches everything c asks for, and errors.As
// finds the very typed errors the service returned, not copies.
func (c errorsCheck) check(t *testing.T, err error) {
	t.Helper()
	for _, want := range c.is {
		if !errors.Is(err, want) {
			t.Errorf("errors.Is(%v, %v) = false, want true", err, want)
		}
	}
	if c.coded != nil {
		var got *errorsCodedError
		if !errors.As(err, &got) || got != c.coded {
			t.Errorf("errors.As(%v, *errorsCodedError) = %p, want the service's own %p", err, got, c.coded)
		}
	}
	if c.limit != nil {
		var got *proxy.RateLimitError
		if !errors.As(err, &got) || got != c.limit || got.RetryAfter != c.limit.RetryAfter {
			t.Errorf("errors.As(%v, *RateLimitError) = %p, want the service's own %p", err, got, c.limit)
		}
	}
	if c.invalid != nil {
		var got *proxy.InvalidRequestError
		if !errors.As(err, &got) || got != c.invalid {
			t.Errorf("errors.As(%v, *InvalidRequestError) = %p, want the service's own %p", err, got, c.invalid)
		}
	}
	if got := proxy.OutcomeOf(err); got != c.outcome {
		t.Errorf("OutcomeOf(%v) = %v, want %v", err, got, c.outcome)
	}
}

// errorsFailWith returns an instance that fails every call with err.
func errorsFailWith(err error) proxy.ServiceFunc {
	return func(context.Context, *proxy.Request) (*proxy.Response, error) { return nil, err }
}

// TestErrorsThroughTheStack sends each kind of error through the whole
// stack and checks that it is still what it was.
func TestErrorsThroughTheStack(t *testing.T) {
	coded := &errorsCodedError{Code: "do_not_honor"}
	limited := &proxy.RateLimitError{Key: "alice", RetryAfter: 3 * time.Second}
	invalid := &proxy.InvalidRequestError{Field: "data.amount", Reason: "must be positive"}
	tests := []struct {
		name      string
		inst      proxy.ServiceFunc
		health    func() error                     // nil: the instance has no Health method
		prepare   func(*testing.T, *errorsStack)   // run before the call
		ctx       func(*testing.T) context.Context // the caller's; t.Context() when nil
		wantCalls int64                            // calls that reach the instance
		want      errorsCheck
	}{
		{
			name: "caller's sentinel, retried", inst: errorsFailWith(errorsOwn), wantCalls: 3,
			want: errorsCheck{is: []error{errorsOwn}, outcome: proxy.OutcomeError},
		},
		{
			name: "caller's sentinel, wrapped", inst: errorsFailWith(fmt.Errorf("charge: %w", errorsOwn)), wantCalls: 3,
			want: errorsCheck{is: []error{errorsOwn}, outcome: proxy.OutcomeError},
		},
		{
			name: "caller's typed error", inst: errorsFailWith(coded), wantCalls: 3,
			want: errorsCheck{is: []error{coded}, coded: coded, outcome: proxy.OutcomeError},
		},
		{
			name: "caller's errors joined", inst: errorsFailWith(errors.Join(errorsOwn, coded)), wantCalls: 3,
			want: errorsCheck{is: []error{errorsOwn}, coded: coded, outcome: proxy.OutcomeError},
		},
		{
			name: "caller's typed error, not to be retried", inst: errorsFailWith(retry.Permanent(coded)), wantCalls: 1,
			want: errorsCheck{is: []error{coded}, coded: coded, outcome: proxy.OutcomeError},
		},
		{
			name: "rate limited inside", inst: errorsFailWith(limited), wantCalls: 1,
			want: errorsCheck{is: []error{proxy.ErrRateLimited}, limit: limited, outcome: proxy.OutcomeRateLimited},
		},
		{
			name: "invalid request", inst: errorsFailWith(invalid), wantCalls: 1,
			want: errorsCheck{is: []error{proxy.ErrInvalidRequest}, invalid: invalid, outcome: proxy.OutcomeInvalid},
		},
		{
			name: "forbidden, wrapping the caller's error", inst: errorsFailWith(fmt.Errorf("%w: %w", proxy.ErrForbidden, coded)),
			wantCalls: 1,
			want:      errorsCheck{is: []error{proxy.ErrForbidden}, coded: coded, outcome: proxy.OutcomeForbidden},
		},
		{
			name: "circuit open",
			inst: errorsFailWith(errorsOwn),
			prepare: func(_ *testing.T, s *errorsStack) {
				for range 10 {
					_ = s.br.Do(func() error { return errorsOwn })
				}
			},
			wantCalls: 0,
			want: errorsCheck{is: []error{proxy.ErrCircuitOpen, breaker.ErrOpen},
				outcome: proxy.OutcomeCircuitOpen},
		},
		{
			name: "overloaded",
			inst: errorsFailWith(errorsOwn),
			prepare: func(t *testing.T, s *errorsStack) {
				if err := s.bh.Acquire(t.Context(), aliceReq.Service); err != nil {
					t.Fatalf("Acquire(%q) = %v, want nil", aliceReq.Service, err)
				}
			},
			wantCalls: 0,
			want:      errorsCheck{is: []error{proxy.ErrOverloaded, bulkhead.ErrFull}, outcome: proxy.OutcomeOverloaded},
		},
		{
			name:      "no healthy instance",
			inst:      errorsFailWith(errorsOwn),
			health:    func() error { return errors.New("health: down") },
			prepare:   func(*testing.T, *errorsStack) { synctest.Wait() }, // the first check has marked it down
			wantCalls: 0,
			want: errorsCheck{is: []error{proxy.ErrNoHealthyInstance, balance.ErrNoHealthyInstance},
				outcome: proxy.OutcomeNoHealthyInstance},
		},
		{
			name: "every attempt timed out, the service's error kept",
			inst: func(ctx context.Context, _ *proxy.Request) (*proxy.Response, error) {
				<-ctx.Done()
				return nil, coded // a service that lost the deadline in its own error
			},
			wantCalls: 3,
			want: errorsCheck{is: []error{context.DeadlineExceeded, coded}, coded: coded,
				outcome: proxy.OutcomeTimeout},
		},
		{
			name: "caller's deadline",
			inst: func(ctx context.Context, _ *proxy.Request) (*proxy.Response, error) {
				<-ctx.Done()
				return nil, fmt.Errorf("charge: %w", ctx.Err())
			},
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			wantCalls: 1,
			want:      errorsCheck{is: []error{context.DeadlineExceeded}, outcome: proxy.OutcomeTimeout},
		},
		{
			name: "caller canceled",
			inst: errorsFailWith(errorsOwn),
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				return ctx
			},
			wantCalls: 0,
			want:      errorsCheck{is: []error{context.Canceled}, outcome: proxy.OutcomeCanceled},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newErrorsStack(t, tt.inst, tt.health, nil)
				if tt.prepare != nil {
					tt.prepare(t, s)
				}
				ctx := t.Context()
				if tt.ctx != nil {
					ctx = tt.ctx(t)
				}
				resp, err := s.svc.Process(ctx, aliceReq)
				if resp != nil || err == nil {
					t.Fatalf("Process() = %+v, %v, want nil and an error", resp, err)
				}
				tt.want.check(t, err)
				if got := s.calls.Load(); got != tt.wantCalls {
					t.Errorf("instance calls = %d, want %d", got, tt.wantCalls)
				}
				if got := s.dropped.Load(); got != 1 {
					t.Errorf("audit events dropped = %d, want 1 (Audited fails open)", got)
				}
			})
		})
	}
}

// TestErrorsUnchangedWhenNotRetried checks that an error nothing had to say
// anything about comes back as the very value the service returned.
func TestErrorsUnchangedWhenNotRetried(t *testing.T) {
	coded := &errorsCodedError{Code: "do_not_honor"}
	limited := &proxy.RateLimitError{Key: "alice", RetryAfter: time.Second}
	wrapped := fmt.Errorf("%w: %w", proxy.ErrInvalidRequest, errorsOwn)
	for _, want := range []error{limited, wrapped, fmt.Errorf("%w: %w", proxy.ErrForbidden, coded)} {
		t.Run(want.Error(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newErrorsStack(t, errorsFailWith(want), nil, nil)
				if _, err := s.svc.Process(t.Context(), aliceReq); err != want {
					t.Errorf("Process() = %#v, want the service's own %#v", err, want)
				}
			})
		})
	}
}

// TestErrorsThroughAuditFailingClosed checks that the *AuditError of a call
// whose event could not be recorded still matches the call's own errors.
func TestErrorsThroughAuditFailingClosed(t *testing.T) {
	coded := &errorsCodedError{Code: "do_not_honor"}
	synctest.Test(t, func(t *testing.T) {
		s := newErrorsStack(t, errorsFailWith(errors.Join(errorsOwn, coded)), nil, errorsFailingSink{})
		_, err := s.svc.Process(t.Context(), aliceReq)
		errorsCheck{is: []error{errorsOwn, errErrorsSink}, coded: coded, outcome: proxy.OutcomeError}.check(t, err)
		var aerr *proxy.AuditError
		if !errors.As(err, &aerr) || !errors.Is(aerr.CallErr, errorsOwn) {
			t.Errorf("errors.As(%v, *AuditError) = %v, want one whose CallErr matches %v", err, aerr, errorsOwn)
		}
	})
}

// TestErrorsSuccessThroughTheStack checks the stack lets a good answer
// through untouched but for the instance's name.
func TestErrorsSuccessThroughTheStack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newErrorsStack(t, echo, nil, nil)
		resp, err := s.svc.Process(t.Context(), aliceReq)
		if err != nil || resp.RequestID != aliceReq.ID || resp.Instance != "payment-1" {
			t.Fatalf("Process() = %+v, %v, want the answer of payment-1", resp, err)
		}
	})
}
