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
