package breaker

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"
)

// Defaults of a [Breaker] built by [New] with no options.
const (
	// DefaultConsecutiveFailures is the number of consecutive failures that
	// trips a breaker when neither [WithConsecutiveFailures] nor
	// [WithFailureRatio] is given.
	DefaultConsecutiveFailures = 5
	// DefaultInterval is the length of the counting window of the closed
	// state (see [WithInterval]).
	DefaultInterval = time.Minute
	// DefaultCooldown is how long a tripped breaker stays open (see
	// [WithCooldown]).
	DefaultCooldown = time.Minute
	// DefaultHalfOpenProbes is how many probe calls a half-open breaker lets
	// through (see [WithHalfOpenProbes]).
	DefaultHalfOpenProbes = 1
)

// windowBuckets is the number of steps in which the counting window of the
// closed state rolls.
const windowBuckets = 10

// An Option configures a [Breaker].
type Option func(*config)

// config is the settings New collects from its options.
type config struct {
	name string
	// consecutive is the consecutive-failure threshold; 0 until
	// WithConsecutiveFailures sets it.
	consecutive uint32
	// ratio and minCalls are the failure-ratio rule; ratio is 0 until
	// WithFailureRatio sets it.
	ratio    float64
	minCalls uint32
	interval time.Duration
	cooldown time.Duration
	probes   uint32
	excluded func(error) bool
}

func defaultConfig() config {
	return config{
		interval: DefaultInterval,
		cooldown: DefaultCooldown,
		probes:   DefaultHalfOpenProbes,
		excluded: isCanceled,
	}
}

func isCanceled(err error) bool { return errors.Is(err, context.Canceled) }

// WithName sets the breaker's name, which [Event.Name] carries so that one
// subscriber can tell several breakers apart. The default is "".
func WithName(name string) Option {
	return func(c *config) { c.name = name }
}

// WithConsecutiveFailures makes the breaker trip when n calls in a row have
// failed in the closed state. n must be at least 1. When neither this option
// nor [WithFailureRatio] is given, the breaker trips after
// [DefaultConsecutiveFailures] (5) consecutive failures; when either is
// given, only the rules given apply, and with both the first one met trips
// it.
func WithConsecutiveFailures(n int) Option {
	if n < 1 || uint64(n) > math.MaxUint32 {
		panic("breaker: WithConsecutiveFailures(" + strconv.Itoa(n) + "): n must be between 1 and 2^32-1")
	}
	return func(c *config) { c.consecutive = uint32(n) }
}

// WithFailureRatio makes the breaker trip when, in the counting window of
// the closed state (see [WithInterval]), at least minCalls calls have
// finished and the share of them that failed is at least ratio. Excluded
// calls and calls still running do not count. ratio must be in (0, 1] and
// minCalls at least 1. By default this rule is off; see
// [WithConsecutiveFailures] for how the two rules combine.
func WithFailureRatio(ratio float64, minCalls int) Option {
	if !(ratio > 0 && ratio <= 1) {
		panic("breaker: WithFailureRatio(" + strconv.FormatFloat(ratio, 'g', -1, 64) + ", ...): ratio must be in (0, 1]")
	}
	if minCalls < 1 || uint64(minCalls) > math.MaxUint32 {
		panic("breaker: WithFailureRatio(..., " + strconv.Itoa(minCalls) + "): minCalls must be between 1 and 2^32-1")
	}
	return func(c *config) { c.ratio, c.minCalls = ratio, uint32(minCalls) }
}

// WithInterval sets the length of the counting window of the closed state:
// the breaker's trip rules see only the calls of the last d, and older ones
// age out in ten steps of d/10. d must be positive. The default is
// [DefaultInterval] (one minute). The counts are also cleared at every change
// of state.
//
// A call counts in the step in which it began, so a call that ends after its
// step has aged out of the window counts neither way. (A call that began on
// the closed state's fast path, with no failure pending, is dropped by the
// same rule but, when it counts, counts in the step in which it ended: see
// the package documentation.) d must therefore be
// longer than the longest call the breaker guards, such as the timeout
// inside it: a backend that hangs for longer than d never trips the breaker.
func WithInterval(d time.Duration) Option {
	if d <= 0 {
		panic("breaker: WithInterval(" + d.String() + "): the interval must be positive")
	}
	return func(c *config) { c.interval = d }
}

// WithCooldown sets how long a tripped breaker stays open, rejecting every
// call, before it turns half-open and lets probes through. d must be
// positive. The default is [DefaultCooldown] (one minute).
func WithCooldown(d time.Duration) Option {
	if d <= 0 {
		panic("breaker: WithCooldown(" + d.String() + "): the cool-down must be positive")
	}
	return func(c *config) { c.cooldown = d }
}

// WithHalfOpenProbes sets how many probe calls a half-open breaker lets
// through in all; the calls beyond them are rejected with
// [ErrTooManyRequests] until the probes' results decide. The breaker closes
// when its n probes have all succeeded and opens again at the first that
// fails; an excluded probe gives its place to another call. n must be at
// least 1. The default is [DefaultHalfOpenProbes] (1).
func WithHalfOpenProbes(n int) Option {
	if n < 1 || uint64(n) > math.MaxUint32 {
		panic("breaker: WithHalfOpenProbes(" + strconv.Itoa(n) + "): n must be between 1 and 2^32-1")
	}
	return func(c *config) { c.probes = uint32(n) }
}

// WithExcluded sets the classifier of errors that do not count at all,
// neither as a success nor as a failure: the caller's own mistakes (a
// malformed request) and cancellations say nothing about the health of the
// service behind the breaker. It is called with every non-nil error a call
// returns, except those marked with [Exclude], on the goroutine of the call
// and under no lock, so it may use the breaker; it must be safe for
// concurrent use. f replaces the default, which excludes the errors that
// match [context.Canceled]; a classifier that should go on ignoring
// cancellations must test for them itself. A call that panics is a failure,
// whatever f says, and f is not called for it. f must not be nil.
func WithExcluded(f func(error) bool) Option {
	if f == nil {
		panic("breaker: WithExcluded(nil)")
	}
	return func(c *config) { c.excluded = f }
}
