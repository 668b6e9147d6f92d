package breaker

import (
	"sync/atomic"
	"time"

	"github.com/proxykit/proxy/internal/stripe"
)

// The closed state's success path.
//
// gobreaker reads the wall clock twice and takes its mutex twice for every
// call, about 120 ns, which is most of what a breaker costs a healthy
// service. Under the consecutive-failures rule a success changes nothing in
// gobreaker's decisions while no failure is counted: it resets a count that
// is already zero. So while the breaker is closed and every recorded failure
// has been followed by a recorded success, Do runs the function without
// telling gobreaker, and counts the success itself (for [Breaker.Counts]).
// Everything else goes through gobreaker as before: failures, panics,
// exclusions, successes that follow a failure, and every call while the
// breaker is open or half-open. A success on the fast path that ends after
// a failure began is recorded in gobreaker after all, so that the order of
// completions gobreaker would have seen is kept; gobreaker then counts it in
// the window's step in which it ended, not the one in which it began (see
// doc.go). The failure-ratio rule needs every success counted: a breaker
// with that rule has no fast path.

// fastPath is the state of the closed state's success path.
type fastPath struct {
	// epoch is when the breaker was made; the fast path measures how long
	// a call took as monotonic time since it, which is cheaper than a
	// wall-clock read.
	epoch time.Time
	// step and steps are gobreaker's counting window: steps steps of step
	// each. gobreaker drops a call whose step has left the window by the
	// time it ends; the fast path does the same.
	step  time.Duration
	steps int64
	// cooldown is how long the breaker stays open.
	cooldown time.Duration
	// skipSuccesses reports whether the trip rule lets successes bypass
	// gobreaker: only the consecutive-failures rule does.
	skipSuccesses bool

	// state mirrors gobreaker's state, and openUntil (monotonic time since
	// epoch) when an open state's cool-down ends. Both are written by
	// Breaker.record, under gobreaker's lock, when the state changes.
	state     atomic.Int32
	openUntil atomic.Int64
	// generation counts gobreaker's changes of state, so that a call can
	// tell whether the breaker changed state while it ran.
	generation atomic.Uint64
	// origin (monotonic time since epoch) mirrors the start of gobreaker's
	// current generation, from which it numbers the window's steps. It is
	// stored after generation is bumped, and read before it.
	origin atomic.Int64
	// started counts failures about to be recorded in gobreaker, and
	// finished those recorded (or refused by it). started ≥ finished.
	started, finished atomic.Uint64
	// cleared is the highest value of finished known to be followed by a
	// recorded success, or by the breaker closing: failures up to it no
	// longer count towards a trip. The fast path is open while
	// started == cleared.
	cleared atomic.Uint64

	// successes counts the fast path's successes since the last change of
	// state, and consecutiveFrom its total at the last recorded failure.
	successes       stripedCount
	consecutiveFrom atomic.Uint64
}

// A stripedCount is a counter that many goroutines add to at once. Each
// adds to its processor's stripe (see internal/stripe), on a cache line of
// its own, so that callers on different cores do not write the same line;
// a read sums them. The fields the fast path reads on every call are kept
// off these lines.
type stripedCount struct {
	picker  *stripe.Picker
	_       cacheLinePad
	stripes [stripe.Max]struct {
		n atomic.Uint64
		_ [56]byte // the rest of the stripe's 64-byte cache line
	}
}

type cacheLinePad struct{ _ [64]byte }

func (c *stripedCount) add() { c.stripes[c.picker.Pick()].n.Add(1) }

func (c *stripedCount) load() uint64 {
	var n uint64
	for i := range c.stripes {
		n += c.stripes[i].n.Load()
	}
	return n
}

func (c *stripedCount) reset() {
	for i := range c.stripes {
		c.stripes[i].n.Store(0)
	}
}

func newFastPath(interval, bucket, cooldown time.Duration, skipSuccesses bool) *fastPath {
	// The window's steps, as gobreaker.NewCircuitBreaker works them out
	// from Settings.Interval and Settings.BucketPeriod.
	step, steps := interval, int64(1)
	if bucket > 0 {
		step = bucket
		steps = int64((interval + bucket - 1) / bucket)
	}
	f := &fastPath{epoch: time.Now(), step: step, steps: steps, cooldown: cooldown, skipSuccesses: skipSuccesses}
	f.successes.picker = stripe.New()
	f.state.Store(int32(Closed))
	return f
}

// open reports whether a call may take the fast path now, and the values
// of started and generation it was decided on. generation is read first:
// changed bumps it before it stores the new state, so a call that sees the
// closed state carries that state's generation or an older one, and is
// then stale.
func (f *fastPath) open() (ok bool, started, generation uint64) {
	generation = f.generation.Load()
	started = f.started.Load()
	return f.skipSuccesses && State(f.state.Load()) == Closed && started == f.cleared.Load(), started, generation
}

// stale reports whether a fast-path call that began at began (since the
// epoch) in generation counts neither way now: the breaker has changed
// state since, or the call's step of the window has left it, as gobreaker
// judges the calls it saw begin.
func (f *fastPath) stale(generation uint64, began time.Duration) bool {
	origin := time.Duration(f.origin.Load())
	if f.generation.Load() != generation {
		return true
	}
	if f.steps < 2 {
		// A window of one step (an interval under 10 ns) is cleared whole
		// when it ends, by a generation the fast path does not see: a call
		// as long as the window counts neither way.
		return time.Since(f.epoch)-began >= f.step
	}
	return int64((time.Since(f.epoch)-origin)/f.step)-int64((began-origin)/f.step) >= f.steps
}

// rejecting reports whether the breaker is open and its cool-down has not
// ended: a call is then refused without asking gobreaker, which would read
// the wall clock under its lock to find out the same. Once the cool-down
// has ended, calls go to gobreaker, which turns half-open.
func (f *fastPath) rejecting() bool {
	return State(f.state.Load()) == Open && int64(time.Since(f.epoch)) < f.openUntil.Load()
}

// failureStarting is called just before gobreaker records a failure.
func (f *fastPath) failureStarting() { f.started.Add(1) }

// failureFinished is called once gobreaker has recorded, or refused, a
// failure announced by failureStarting.
func (f *fastPath) failureFinished() {
	f.finished.Add(1)
	f.consecutiveFrom.Store(f.successes.load())
}

// clear raises cleared to n: called with the value of finished seen before
// a success that gobreaker has since recorded, every failure recorded
// before is cleared.
func (f *fastPath) clear(n uint64) {
	for {
		c := f.cleared.Load()
		if c >= n || f.cleared.CompareAndSwap(c, n) {
			return
		}
	}
}

// changed is called by Breaker.record, under gobreaker's lock, when the
// breaker changes state: gobreaker clears its counts, so the failures
// recorded so far no longer count.
func (f *fastPath) changed(to State) {
	f.generation.Add(1)
	f.origin.Store(int64(time.Since(f.epoch)))
	f.successes.reset()
	f.consecutiveFrom.Store(0)
	switch to {
	case Closed:
		f.clear(f.finished.Load())
	case Open:
		// gobreaker's cool-down began when it read the clock, a moment
		// ago: this one ends no sooner.
		f.openUntil.Store(int64(time.Since(f.epoch) + f.cooldown))
	}
	f.state.Store(int32(to))
}

// addTo adds the fast path's successes to gobreaker's counts c.
func (f *fastPath) addTo(c *Counts) {
	n := f.successes.load()
	consecutive := n - min(n, f.consecutiveFrom.Load())
	c.Requests += uint32(n)
	c.TotalSuccesses += uint32(n)
	if c.ConsecutiveFailures == 0 {
		c.ConsecutiveSuccesses += uint32(consecutive)
	}
}

// doFast runs fn on the fast path: the breaker was closed with no failure
// counted when the call began, as started says.
func (b *Breaker) doFast(fn func() error, started, generation uint64) error {
	f := b.fast
	began := time.Since(f.epoch)
	returned := false
	defer func() {
		if !returned {
			// fn panicked or ended with runtime.Goexit: a failure, which
			// gobreaker records; the panic or the exit then goes on.
			b.recordOutcome(generation, began, errPanicked)
		}
	}()
	err := fn()
	returned = true
	if err != nil {
		return b.recordOutcome(generation, began, err)
	}
	if f.started.Load() != started {
		// A failure began while fn ran: record the success in gobreaker
		// too, in its place after that failure.
		b.recordOutcome(generation, began, nil)
		return nil
	}
	if f.generation.Load() == generation { // not a success of an earlier state
		f.successes.add()
	}
	return nil
}

// recordOutcome records in gobreaker the outcome err of a fast-path call
// that began at began (since the epoch) in generation, and returns err as
// Do does. A call that is stale (see fastPath.stale) counts neither way, as
// gobreaker treats the calls it saw begin.
func (b *Breaker) recordOutcome(generation uint64, began time.Duration, err error) error {
	f := b.fast
	if f.stale(generation, began) {
		return unmark(err)
	}
	called := false
	recorded := b.through(func() error {
		called = true
		if f.stale(generation, began) { // the breaker moved on meanwhile
			if err == nil {
				return Exclude(errStale)
			}
			return Exclude(err)
		}
		return err
	})
	if !called || err == nil {
		// Refused (the breaker has opened since), or a success: the
		// call's own result stands.
		return unmark(err)
	}
	return recorded
}
