package balance

import (
	"fmt"
	"time"
)

// A Clock tells the time. The Balancer reads it to eject instances and to
// bring them back; tests inject a fake one with [WithClock].
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// An Option configures a [Balancer].
type Option func(*config)

type config struct {
	clock Clock

	failureThreshold   int
	ejectionTime       time.Duration
	maxEjectionTime    time.Duration
	maxEjectionPercent int

	checkInterval      time.Duration
	checkTimeout       time.Duration
	unhealthyThreshold int
	healthyThreshold   int
}

func defaultConfig() config {
	return config{
		clock:              realClock{},
		failureThreshold:   5,
		ejectionTime:       30 * time.Second,
		maxEjectionTime:    5 * time.Minute,
		maxEjectionPercent: 50,
		checkInterval:      10 * time.Second,
		checkTimeout:       2 * time.Second,
		unhealthyThreshold: 3,
		healthyThreshold:   2,
	}
}

// WithClock sets the clock that passive ejection reads. The default is the
// real time. Active health checks run on the runtime's timers whatever the
// clock; test them in a [testing/synctest] bubble. WithClock panics if c is
// nil.
func WithClock(c Clock) Option {
	if c == nil {
		panic("balance: WithClock(nil)")
	}
	return func(cfg *config) { cfg.clock = c }
}

// WithFailureThreshold sets how many consecutive failed calls eject an
// instance. The default is 5. It panics if n is less than 1; use
// [WithMaxEjectionPercent](0) to turn ejection off.
func WithFailureThreshold(n int) Option {
	if n < 1 {
		panic(fmt.Sprintf("balance: WithFailureThreshold(%d): must be at least 1", n))
	}
	return func(cfg *config) { cfg.failureThreshold = n }
}

// WithEjectionTime sets the base ejection time. An instance ejected k times
// in a row stays out k times d, up to the cap set by [WithMaxEjectionTime].
// The default is 30s. It panics if d is not positive.
func WithEjectionTime(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("balance: WithEjectionTime(%v): must be positive", d))
	}
	return func(cfg *config) { cfg.ejectionTime = d }
}

// WithMaxEjectionTime caps how long one ejection lasts. The default is 5m.
// It panics if d is not positive.
func WithMaxEjectionTime(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("balance: WithMaxEjectionTime(%v): must be positive", d))
	}
	return func(cfg *config) { cfg.maxEjectionTime = d }
}

// WithMaxEjectionPercent sets the largest share of the instances, in
// percent, that may be ejected at once, rounded down: with 3 instances and
// 50, one instance at most; with a single instance, none. Zero turns passive
// ejection off. Whatever the percentage, ejection never leaves the Balancer
// without an eligible instance. The default is 50. It panics if p is
// outside [0, 100].
func WithMaxEjectionPercent(p int) Option {
	if p < 0 || p > 100 {
		panic(fmt.Sprintf("balance: WithMaxEjectionPercent(%d): must be in [0, 100]", p))
	}
	return func(cfg *config) { cfg.maxEjectionPercent = p }
}

// WithCheckInterval sets how often the health checks started by
// [Balancer.Start] check each instance that implements [HealthChecker]. The
// default is 10s. It panics if d is not positive.
func WithCheckInterval(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("balance: WithCheckInterval(%v): must be positive", d))
	}
	return func(cfg *config) { cfg.checkInterval = d }
}

// WithCheckTimeout sets the deadline of one health check. The default is
// 2s. It panics if d is not positive.
func WithCheckTimeout(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("balance: WithCheckTimeout(%v): must be positive", d))
	}
	return func(cfg *config) { cfg.checkTimeout = d }
}

// WithUnhealthyThreshold sets how many consecutive failed health checks mark
// an instance down. The default is 3. It panics if n is less than 1.
func WithUnhealthyThreshold(n int) Option {
	if n < 1 {
		panic(fmt.Sprintf("balance: WithUnhealthyThreshold(%d): must be at least 1", n))
	}
	return func(cfg *config) { cfg.unhealthyThreshold = n }
}

// WithHealthyThreshold sets how many consecutive passed health checks mark a
// down instance up again. The default is 2. It panics if n is less than 1.
func WithHealthyThreshold(n int) Option {
	if n < 1 {
		panic(fmt.Sprintf("balance: WithHealthyThreshold(%d): must be at least 1", n))
	}
	return func(cfg *config) { cfg.healthyThreshold = n }
}
