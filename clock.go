package proxy

import "time"

// A Clock tells the time. The wrappers that read the time take one (for
// example [WithAuditClock]), so tests can run them on a fake clock; the
// default is the system clock.
type Clock interface {
	Now() time.Time
}

// systemClock is the Clock of real time.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// since returns the time c has moved on since start, a time c gave. With
// the system clock, start carries a monotonic reading, so this is one
// monotonic read rather than a second read of the wall clock as well.
func since(c Clock, start time.Time) time.Duration {
	if _, ok := c.(systemClock); ok {
		return time.Since(start)
	}
	return c.Now().Sub(start)
}
