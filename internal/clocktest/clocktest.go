// Package clocktest provides a fake clock for tests of the time-aware
// packages. Every such package declares
//
//	type Clock interface{ Now() time.Time }
//
// and a *Clock from this package satisfies all of them.
package clocktest

import (
	"sync"
	"time"
)

// A Clock is a manually advanced clock. It is safe for concurrent use. Use
// [New]; the zero value reads as the zero time.
type Clock struct {
	// mu guards now.
	mu  sync.Mutex
	now time.Time
}

// New returns a Clock that reads start until it is advanced.
func New(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and returns the new time. A negative d
// moves it back, which tests of clock skew may want.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
