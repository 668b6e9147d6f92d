package retry

import (
	"context"
	"errors"
	"strconv"
	"strings"
)

// ErrBudgetExhausted is joined into the error [Policy.Do] returns when a
// failure would have been retried but the policy's retry budget (see
// [WithBudget]) had no retry left. It says why the call stopped; the
// attempts' own errors stay in the chain beside it.
var ErrBudgetExhausted = errors.New("retry: budget exhausted")

// An Error reports a call that failed after [Policy.Do] retried it, or whose
// wait for a retry was cut short by its context, or that the retry budget
// stopped. errors.Is and errors.As see through it to every attempt's error,
// so the caller's own errors stay matchable.
//
// Do returns an op's error unchanged, not an *Error, when op was called once
// and nothing else is to be said.
type Error struct {
	// Attempts is how many times op was called, at least 1.
	Attempts int
	// Err joins, with [errors.Join], the attempts' errors in the order they
	// happened, followed by the reason the retries stopped when it is not
	// the last attempt's error: ctx's error ([context.Canceled] or
	// [context.DeadlineExceeded]) or [ErrBudgetExhausted].
	Err error
}

// Error returns "retry: N attempts: " followed by the joined errors'
// messages, separated by "; ".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("retry: ")
	b.WriteString(strconv.Itoa(e.Attempts))
	if e.Attempts == 1 {
		b.WriteString(" attempt: ")
	} else {
		b.WriteString(" attempts: ")
	}
	if j, ok := e.Err.(interface{ Unwrap() []error }); ok {
		for i, err := range j.Unwrap() {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(err.Error())
		}
	} else if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// A PermanentError marks an error that must never be retried, whatever the
// classifiers say. Make one with [Permanent]. It unwraps to the error it
// marks, so errors.Is and errors.As see through it.
type PermanentError struct {
	// Err is the error that must not be retried.
	Err error
}

// Error returns the marked error's message unchanged.
func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns e.Err.
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as not to be retried: an op passed to [Policy.Do]
// returns Permanent(err) to stop the retries at once after a failure that no
// second try can fix, such as a backend's answer that the input is invalid.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err, or any error it wraps, was marked with
// [Permanent].
func IsPermanent(err error) bool {
	_, ok := errors.AsType[*PermanentError](err)
	return ok
}

// DefaultRetryable is the classification [Policy.Do] starts from: it reports
// whether err is worth retrying, which is every error except a nil one,
// [context.Canceled] and [context.DeadlineExceeded]. (Do stops anyway when
// its own ctx is done; DefaultRetryable also declines the context errors of
// an op that ran out of a time limit of its own.) [Policy.DoIf] takes a
// different starting point, such as one that retries an attempt's own
// timeout.
func DefaultRetryable(err error) bool {
	return err != nil &&
		!errors.Is(err, context.Canceled) &&
		!errors.Is(err, context.DeadlineExceeded)
}
