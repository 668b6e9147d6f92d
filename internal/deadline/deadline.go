// Package deadline provides a context with a deadline that costs one
// allocation and one clock read until something waits on it.
//
// context.WithTimeout arms a timer and allocates four times on every call,
// about 300 ns, although most calls end long before their deadline and many
// services never wait on Done: they pass the context on, check Err, or
// finish without looking at it. A [Context] only records its deadline. It
// becomes a real context.WithDeadlineCause, timer and all, the first time
// it is asked for Done (by a select, by context.AfterFunc, or by a context
// derived from it), when Err finds the deadline passed or the parent done,
// or when it is finished first. Until then its Err compares a monotonic
// clock reading with the deadline.
package deadline

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// A Context is a context.Context whose deadline is set when it is made but
// whose timer is only armed when it is needed. Use [New], and call
// [Context.Finish] once the work it bounds is done, as one calls the cancel
// function of context.WithTimeout.
//
// A Context behaves as the context.WithDeadlineCause it stands for, with one
// difference: Finish before the deadline has been noticed (by Err, or by a
// timer armed by Done) reports [context.Canceled] from then on, even when
// the deadline had already passed.
type Context struct {
	parent context.Context
	cause  error
	// start is when the Context was made, with a monotonic reading: the
	// deadline check measures time since it, one monotonic read, instead
	// of reading the wall clock too.
	start time.Time
	// left is the deadline's distance from start: the deadline is
	// start.Add(left).
	left time.Duration
	// parentFirst reports whether the parent's deadline is the Context's:
	// the parent then ends it, with the parent's cause, as with
	// context.WithDeadlineCause, and the Context arms no timer of its own.
	parentFirst bool

	// armed is set once real and cancel hold the standard library context
	// the Context stands for; they are written before it, with mu held, and
	// never change afterwards.
	armed  atomic.Bool
	real   context.Context
	cancel context.CancelFunc
	// finished is set by Finish.
	finished atomic.Bool
	// mu serialises arming, so that there is only ever one real context.
	mu sync.Mutex
}

var _ context.Context = (*Context)(nil)

// New returns a Context that is done d from now, when parent is done, or
// when it is finished, whichever comes first; parent's deadline, if
// sooner, is its deadline. When the deadline passes, [context.Cause] of the
// Context reports cause (or [context.DeadlineExceeded] when cause is nil),
// as with context.WithTimeoutCause.
func New(parent context.Context, d time.Duration, cause error) *Context {
	if parent == nil {
		panic("deadline: New with a nil parent context")
	}
	start := time.Now()
	deadline := start.Add(d)
	parentFirst := false
	if pd, ok := parent.Deadline(); ok && !pd.After(deadline) {
		deadline, parentFirst = pd, true
	}
	return &Context{parent: parent, cause: cause, start: start, left: deadline.Sub(start), parentFirst: parentFirst}
}

// Deadline returns the Context's deadline; ok is always true.
func (c *Context) Deadline() (deadline time.Time, ok bool) { return c.start.Add(c.left), true }

// Done returns a channel that is closed when the Context is done. The first
// call arms the Context's timer.
func (c *Context) Done() <-chan struct{} {
	return c.arm().Done()
}

// Err returns nil while the Context is not done, and afterwards why it is:
// [context.DeadlineExceeded], or the parent's error, or [context.Canceled]
// once it has been finished. A non-nil Err and a closed Done channel always
// go together.
func (c *Context) Err() error {
	if c.armed.Load() {
		return c.real.Err()
	}
	if c.finished.Load() || c.parent.Err() != nil || !c.parentFirst && time.Since(c.start) >= c.left {
		// Arm it, so that Done, Err and Cause agree from now on.
		return c.arm().Err()
	}
	return nil
}

// Value returns the value the parent associates with key.
func (c *Context) Value(key any) any {
	if c.armed.Load() {
		// The real context answers for itself to the standard library's
		// own lookups (context.Cause, and children finding their parent).
		return c.real.Value(key)
	}
	return c.parent.Value(key)
}

// Finish releases the Context's resources, cancelling it if it is not yet
// done. Finish may be called more than once, and from any goroutine.
func (c *Context) Finish() {
	c.finished.Store(true)
	// arm stores armed before it reads finished, and Finish stores finished
	// before it reads armed: at least one of them sees the other, so an
	// armed Context is always cancelled.
	if c.armed.Load() {
		c.cancel()
	}
}

// String describes the Context as the standard library's contexts do.
func (c *Context) String() string {
	return fmt.Sprintf("%v.WithDeadline(%s [%s])", c.parent, c.start.Add(c.left), c.left-time.Since(c.start))
}

// arm returns the real context, making it on the first call.
func (c *Context) arm() context.Context {
	if c.armed.Load() {
		return c.real
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed.Load() {
		return c.real
	}
	if c.finished.Load() || c.parentFirst {
		c.real, c.cancel = context.WithCancel(c.parent)
		if c.finished.Load() {
			c.cancel()
		}
	} else {
		c.real, c.cancel = context.WithDeadlineCause(c.parent, c.start.Add(c.left), c.cause)
	}
	c.armed.Store(true)
	if c.finished.Load() {
		c.cancel() // Finish ran while the context was being made
	}
	return c.real
}
