package breaker

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/sony/gobreaker/v2"
)

// Errors a [Breaker] rejects a call with. They are gobreaker's own values,
// so errors.Is matches them whichever package's name the caller uses.
var (
	// ErrOpen is returned, without calling the function, when the breaker is
	// open. It is gobreaker.ErrOpenState.
	ErrOpen = gobreaker.ErrOpenState
	// ErrTooManyRequests is returned, without calling the function, when the
	// breaker is half-open and all its probe places are taken. It is
	// gobreaker.ErrTooManyRequests.
	ErrTooManyRequests = gobreaker.ErrTooManyRequests
)

// errGoexit is what gobreaker records as the failure of a call that ended
// with runtime.Goexit.
var errGoexit = errors.New("breaker: call ended by runtime.Goexit")

// errPanicked is the failure the fast path records for a call that
// panicked or ended with runtime.Goexit.
var errPanicked = errors.New("breaker: call panicked or exited")

// errStale marks, as excluded, a fast-path success recorded after the
// breaker changed state.
var errStale = errors.New("breaker: call began before the breaker changed state")

// A Breaker is a circuit breaker: it lets calls through while they succeed,
// stops them for a cool-down once too many fail, then lets a few probes
// through to find out whether the service behind it has recovered.
//
// A Breaker is safe for concurrent use. The zero value is not usable: use
// [New].
type Breaker struct {
	cb       *gobreaker.CircuitBreaker[struct{}]
	name     string
	excluded func(error) bool

	// fast holds what lets calls bypass gobreaker: the closed state's
	// successes and the open state's rejections (see fastpath.go).
	fast *fastPath

	// dirty reports whether queue holds events not yet delivered. It is
	// written with mu held and read without it, so that a call that changed
	// nothing pays one atomic load.
	dirty atomic.Bool

	// mu guards the fields below. It is taken inside gobreaker's own mutex
	// (by record) and never the other way round.
	mu sync.Mutex
	// subs is copied on write, so a delivery can range over the slice it
	// read without holding mu.
	subs []*subscription
	// queue[head:] are the events recorded and not yet delivered, oldest
	// first.
	queue []Event
	head  int
	// delivering reports whether a goroutine is delivering the queue.
	delivering bool
}

// New returns a closed Breaker configured by opts. With no options it trips
// after [DefaultConsecutiveFailures] consecutive failures within a rolling
// [DefaultInterval], stays open for [DefaultCooldown], lets
// [DefaultHalfOpenProbes] probe through when half-open, and does not count
// errors that match [context.Canceled]. New starts no goroutine, and panics
// if an option is nil.
func New(opts ...Option) *Breaker {
	c := defaultConfig()
	for _, o := range opts {
		if o == nil {
			panic("breaker: New with a nil Option")
		}
		o(&c)
	}
	if c.consecutive == 0 && c.ratio == 0 {
		c.consecutive = DefaultConsecutiveFailures
	}
	b := &Breaker{name: c.name, excluded: c.excluded}
	b.fast = newFastPath(c.interval, c.interval/windowBuckets, c.cooldown, c.ratio == 0)
	b.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:          c.name,
		MaxRequests:   c.probes,
		Interval:      c.interval,
		BucketPeriod:  c.interval / windowBuckets,
		Timeout:       c.cooldown,
		ReadyToTrip:   c.readyToTrip(),
		OnStateChange: b.record,
		IsExcluded:    isExcluded,
	})
	return b
}

// readyToTrip returns the trip rule of c for gobreaker, which calls it in
// the closed state after each failure.
func (c *config) readyToTrip() func(gobreaker.Counts) bool {
	consecutive, ratio, minCalls := c.consecutive, c.ratio, c.minCalls
	return func(n gobreaker.Counts) bool {
		if consecutive > 0 && n.ConsecutiveFailures >= consecutive {
			return true
		}
		if ratio > 0 {
			finished := uint64(n.TotalSuccesses) + uint64(n.TotalFailures)
			return finished >= uint64(minCalls) && float64(n.TotalFailures) >= ratio*float64(finished)
		}
		return false
	}
}

// isExcluded is gobreaker's IsExcluded, which gobreaker calls with its
// mutex held: it only recognises the errors that Do marked, so that the
// configured classifier, user code, runs under no lock.
func isExcluded(err error) bool {
	_, ok := err.(*excludedError)
	return ok
}

// Name returns the name given with [WithName].
func (b *Breaker) Name() string { return b.name }

// State returns the breaker's current state. An open breaker whose
// cool-down has passed reports [HalfOpen]: State, like a call, makes that
// change and delivers its [Event] before it returns.
func (b *Breaker) State() State {
	s := stateOf(b.cb.State())
	b.flush()
	return s
}

// Counts returns the breaker's counts since they were last cleared.
func (b *Breaker) Counts() Counts {
	c := countsOf(b.cb.Counts())
	b.fast.addTo(&c)
	return c
}

// Do calls fn if the breaker lets the call through, and returns fn's error.
// When the breaker rejects the call, Do returns [ErrOpen] or
// [ErrTooManyRequests] at once, without calling fn.
//
// A nil error counts as a success. A non-nil error counts as a failure
// unless it is excluded: marked with [Exclude], or reported by the
// classifier of [WithExcluded] (by default, errors that match
// [context.Canceled]). A panic in fn counts as a failure and is raised again
// from Do with the same value; a call that ends with runtime.Goexit counts
// as a failure too, and the goroutine goes on exiting.
//
// State-change events caused by the call are delivered to the subscribers
// before Do returns, unless another goroutine is already delivering events,
// in which case that goroutine delivers them (see [Breaker.Subscribe]).
//
// Do does not allocate when the breaker lets a call through that succeeds.
// It panics if fn is nil.
func (b *Breaker) Do(fn func() error) error {
	if fn == nil {
		panic("breaker: Do with a nil function")
	}
	if ok, started, generation := b.fast.open(); ok {
		return b.doFast(fn, started, generation)
	}
	if b.fast.rejecting() {
		return ErrOpen
	}
	return b.through(fn)
}

// through runs fn through gobreaker: every call but the fast path's
// successes (see fastpath.go).
func (b *Breaker) through(fn func() error) error {
	seen := b.fast.finished.Load()
	var (
		called   bool // fn was let through
		returned bool // fn returned, rather than panicking or exiting
		failed   bool // fn returned an error that counts as a failure
		exiting  bool // fn ended with runtime.Goexit
	)
	defer func() {
		if called && !returned {
			b.fast.failureFinished() // fn panicked or exited: a failure
		}
		if exiting {
			// Stop errGoexit, raised below and again by gobreaker once it
			// recorded the failure; the runtime then carries on with the
			// Goexit.
			_ = recover()
		}
		if b.dirty.Load() {
			b.deliver()
		}
	}()
	_, err := b.cb.Execute(func() (struct{}, error) {
		called = true
		// gobreaker's Execute sees only returns and panics: turn a Goexit
		// into a panic for it, so that it records a failure.
		defer func() {
			if returned {
				return
			}
			b.fast.failureStarting()
			if r := recover(); r != nil {
				panic(r) // a real panic: gobreaker records it and raises it again
			}
			exiting = true
			panic(errGoexit)
		}()
		err := fn()
		if err != nil && err != errPanicked && !isExcluded(err) && b.excluded(err) {
			err = &excludedError{err: err} // Do unwraps it again
		}
		// Set only now: a classifier that panics is a failure too, as a
		// panicking fn is, and must be announced as one.
		returned = true
		failed = err != nil && !isExcluded(err)
		if failed {
			b.fast.failureStarting()
		}
		return struct{}{}, err
	})
	if called {
		if failed {
			b.fast.failureFinished()
		} else if err == nil {
			b.fast.clear(seen)
		}
	}
	return unmark(err)
}

// Execute is [Breaker.Do] for a function with a result: it calls fn through
// b and returns its result and error. When b rejects the call, Execute
// returns the zero T and [ErrOpen] or [ErrTooManyRequests]. Execute does not
// allocate when a call goes through and succeeds, unless fn's result does.
func Execute[T any](b *Breaker, fn func() (T, error)) (T, error) {
	if fn == nil {
		panic("breaker: Execute with a nil function")
	}
	var v T
	err := b.Do(func() error {
		var err error
		v, err = fn()
		return err
	})
	return v, err
}

// Exclude marks err so that the breaker running the call counts it neither
// as a success nor as a failure, whatever its classifier says. The function
// given to [Breaker.Do] returns the marked error as it is (not wrapped
// further), and Do returns err in its place. A layer that knows a failure is
// not the service's fault, such as a request the service rejected as
// malformed, uses it. Exclude(nil) is nil.
func Exclude(err error) error {
	if err == nil {
		return nil
	}
	return &excludedError{err: err}
}

// excludedError is an error marked by Exclude.
type excludedError struct{ err error }

func (e *excludedError) Error() string { return e.err.Error() }
func (e *excludedError) Unwrap() error { return e.err }

// unmark returns the error err marks as excluded, or err itself.
func unmark(err error) error {
	if x, ok := err.(*excludedError); ok {
		return x.err
	}
	return err
}
