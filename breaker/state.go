package breaker

import (
	"strconv"

	"github.com/sony/gobreaker/v2"
)

// A State is the position of a [Breaker] in its cycle.
type State uint8

// The states of a Breaker.
const (
	// Closed is the normal state: every call goes through, and failures are
	// counted towards a trip.
	Closed State = iota
	// HalfOpen follows the cool-down of an open breaker: a bounded number of
	// probe calls go through (see [WithHalfOpenProbes]) and the rest are
	// rejected with [ErrTooManyRequests]. Probes that all succeed close the
	// breaker; one failure opens it again.
	HalfOpen
	// Open rejects every call with [ErrOpen] until the cool-down (see
	// [WithCooldown]) has passed.
	Open
)

// String returns the state's lower-case name: "closed", "half-open" or
// "open".
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half-open"
	case Open:
		return "open"
	default:
		return "State(" + strconv.Itoa(int(s)) + ")"
	}
}

// stateOf translates gobreaker's state into ours.
func stateOf(s gobreaker.State) State {
	switch s {
	case gobreaker.StateHalfOpen:
		return HalfOpen
	case gobreaker.StateOpen:
		return Open
	default:
		return Closed
	}
}

// Counts holds the numbers of calls a [Breaker] has seen since its counts
// were last cleared: at every change of state, and as calls age out of the
// counting window in the closed state (see [WithInterval]). Successes that
// take the closed state's fast path (see the package documentation) are
// counted since the last change of state, without ageing out, and only once
// they have ended.
type Counts struct {
	// Requests is the number of calls let through, including those still
	// running and those excluded from the counts.
	Requests uint32
	// TotalSuccesses is the number of calls that succeeded.
	TotalSuccesses uint32
	// TotalFailures is the number of calls that failed.
	TotalFailures uint32
	// TotalExclusions is the number of calls whose error was excluded (see
	// [WithExcluded] and [Exclude]): neither a success nor a failure.
	TotalExclusions uint32
	// ConsecutiveSuccesses is the number of successes since the last
	// failure.
	ConsecutiveSuccesses uint32
	// ConsecutiveFailures is the number of failures since the last success.
	ConsecutiveFailures uint32
}

func countsOf(c gobreaker.Counts) Counts {
	return Counts{
		Requests:             c.Requests,
		TotalSuccesses:       c.TotalSuccesses,
		TotalFailures:        c.TotalFailures,
		TotalExclusions:      c.TotalExclusions,
		ConsecutiveSuccesses: c.ConsecutiveSuccesses,
		ConsecutiveFailures:  c.ConsecutiveFailures,
	}
}
