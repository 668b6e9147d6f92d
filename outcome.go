package proxy

import (
	"context"
	"errors"
)

// An Outcome is the kind of result a call had, from a small closed set, so
// that metrics labels and audit records stay bounded whatever errors the
// services return.
type Outcome uint8

// The outcomes, in the order OutcomeOf tests for them.
const (
	// OutcomeOK is a call that returned a response and no error.
	OutcomeOK Outcome = iota
	// OutcomeInvalid is a call rejected as malformed ([ErrInvalidRequest]).
	OutcomeInvalid
	// OutcomeUnauthenticated is a call from a caller that could not be
	// identified ([ErrUnauthenticated]).
	OutcomeUnauthenticated
	// OutcomeForbidden is a call the caller may not make ([ErrForbidden]).
	OutcomeForbidden
	// OutcomeRateLimited is a call rejected by a rate limit ([ErrRateLimited]).
	OutcomeRateLimited
	// OutcomeCircuitOpen is a call rejected by an open breaker
	// ([ErrCircuitOpen]).
	OutcomeCircuitOpen
	// OutcomeOverloaded is a call shed by a concurrency limit
	// ([ErrOverloaded]).
	OutcomeOverloaded
	// OutcomeNoHealthyInstance is a call that found no instance to serve it
	// ([ErrNoHealthyInstance]).
	OutcomeNoHealthyInstance
	// OutcomeTimeout is a call that ran out of time
	// ([context.DeadlineExceeded]).
	OutcomeTimeout
	// OutcomeCanceled is a call whose caller gave up ([context.Canceled]).
	OutcomeCanceled
	// OutcomeError is any other failure: the service itself failed.
	OutcomeError
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	OutcomeOK:                "ok",
	OutcomeInvalid:           "invalid",
	OutcomeUnauthenticated:   "unauthenticated",
	OutcomeForbidden:         "forbidden",
	OutcomeRateLimited:       "rate_limited",
	OutcomeCircuitOpen:       "circuit_open",
	OutcomeOverloaded:        "overloaded",
	OutcomeNoHealthyInstance: "no_healthy_instance",
	OutcomeTimeout:           "timeout",
	OutcomeCanceled:          "canceled",
	OutcomeError:             "error",
}

// String returns the outcome's stable lower-case name, such as
// "rate_limited": the value of metrics labels, audit records and the
// gateway's error codes.
func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return "unknown"
}

// Outcomes returns every outcome, in a fixed order, for code that must
// pre-create one metric series per outcome.
func Outcomes() []Outcome {
	all := make([]Outcome, numOutcomes)
	for i := range all {
		all[i] = Outcome(i)
	}
	return all
}

// OutcomeOf classifies err. A nil error is [OutcomeOK]. When err matches
// several sentinels (an open circuit wrapped in a rate-limit error, say), the
// first in the order of the constants wins: the caller's mistakes before the
// proxy's rejections before the service's failures.
func OutcomeOf(err error) Outcome {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrInvalidRequest):
		return OutcomeInvalid
	case errors.Is(err, ErrUnauthenticated):
		return OutcomeUnauthenticated
	case errors.Is(err, ErrForbidden):
		return OutcomeForbidden
	case errors.Is(err, ErrRateLimited):
		return OutcomeRateLimited
	case errors.Is(err, ErrCircuitOpen):
		return OutcomeCircuitOpen
	case errors.Is(err, ErrOverloaded):
		return OutcomeOverloaded
	case errors.Is(err, ErrNoHealthyInstance):
		return OutcomeNoHealthyInstance
	case errors.Is(err, context.DeadlineExceeded):
		return OutcomeTimeout
	case errors.Is(err, context.Canceled):
		return OutcomeCanceled
	default:
		return OutcomeError
	}
}
