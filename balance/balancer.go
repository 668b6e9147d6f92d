package balance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoHealthyInstance is returned by [Balancer.Pick] when no instance is
// eligible: every one is down or ejected.
var ErrNoHealthyInstance = errors.New("balance: no healthy instance")

// An Instance is one member of a [Balancer]'s pool: a value of the caller's
// type and the name that events, snapshots and responses know it by.
type Instance[T any] struct {
	// Name identifies the instance. Names are unique within a Balancer.
	Name string
	// Value is the instance itself. If it implements [HealthChecker], the
	// checks started by [Balancer.Start] call it.
	Value T
}

// A Balancer spreads calls over a fixed pool of instances of one service. It
// picks an eligible instance for each call with its [Picker], counts the
// calls in flight on each, ejects an instance that keeps failing for a
// while, and, once started, checks the health of the instances that
// implement [HealthChecker].
//
// A Balancer is safe for concurrent use. Use [New]; the zero value is not
// usable. Picking takes no lock and allocates nothing, except on the pick
// that finds an ejected instance due back.
type Balancer[T any] struct {
	instances []Instance[T]
	picker    Picker
	cfg       config
	// maxEjected is how many instances may be ejected at once.
	maxEjected int
	// maxMultiplier bounds an instance's ejection multiplier, so that one
	// ejection never lasts longer than cfg.maxEjectionTime and the
	// multiplier decays in bounded time.
	maxMultiplier int

	// slots holds the per-instance counters, updated with atomics.
	slots []slot
	// view is what Pick reads: the eligible instances and when the next
	// ejected one comes back. It is replaced, never changed, under mu.
	view atomic.Pointer[view]

	// checks counts the running health-check goroutines.
	checks sync.WaitGroup

	// mu guards the fields below it, and the replacement of view.
	mu         sync.Mutex
	states     []state
	subs       []*subscriber // copied on write
	pending    []pending
	delivering bool
	started    bool
	closed     bool
	stop       context.CancelFunc
}

// slot holds the counters of one instance that the call path updates. A
// call costs three atomic read-modify-writes, all on one cache line: Pick
// adds to inflight, and Done takes it back and counts the result. The calls
// picked are not counted apart: they are the calls in flight plus the
// results, summed by Snapshot.
type slot struct {
	inflight  atomic.Int64
	fails     atomic.Int64 // consecutive failures
	successes atomic.Uint64
	failures  atomic.Uint64
	neutrals  atomic.Uint64
	// Calls on different cores update different instances' slots. The
	// padding keeps the counters of two slots 88 bytes apart, so that they
	// never share a 64-byte cache line wherever the slice starts.
	_ [88]byte
}

// state is the part of an instance's state that changes under Balancer.mu.
type state struct {
	healthy    bool
	ejected    bool
	until      time.Time // end of the current ejection
	multiplier int       // base ejection times the next ejection lasts, less one
	returnedAt time.Time // end of the last ejection
	ejections  int
	checkOK    int // consecutive passed health checks
	checkBad   int // consecutive failed health checks
	checkErr   error
}

// view is an immutable picture of which instances may take calls.
type view struct {
	eligible   []int
	ejected    int       // number of ejected instances
	nextReturn time.Time // earliest end of an ejection, when ejected > 0
}

// New returns a Balancer over instances that picks with picker. The
// Balancer starts no goroutine: the instances are considered healthy until
// [Balancer.Start] checks them. New panics if there are no instances, if a
// name is empty or repeated, or if picker is nil.
func New[T any](instances []Instance[T], picker Picker, opts ...Option) *Balancer[T] {
	if len(instances) == 0 {
		panic("balance: New with no instances")
	}
	if picker == nil {
		panic("balance: New with a nil Picker")
	}
	seen := make(map[string]bool, len(instances))
	for i, in := range instances {
		if in.Name == "" {
			panic(fmt.Sprintf("balance: New: instance %d has no name", i))
		}
		if seen[in.Name] {
			panic(fmt.Sprintf("balance: New: instance name %q repeated", in.Name))
		}
		seen[in.Name] = true
	}
	cfg := defaultConfig()
	for _, opt := range opts {
		if opt == nil {
			panic("balance: New with a nil Option")
		}
		opt(&cfg)
	}
	b := &Balancer[T]{
		instances:     append([]Instance[T](nil), instances...),
		picker:        picker,
		cfg:           cfg,
		maxEjected:    len(instances) * cfg.maxEjectionPercent / 100,
		maxMultiplier: int((cfg.maxEjectionTime + cfg.ejectionTime - 1) / cfg.ejectionTime),
		slots:         make([]slot, len(instances)),
		states:        make([]state, len(instances)),
	}
	for i := range b.states {
		b.states[i].healthy = true
	}
	b.rebuildLocked(cfg.clock.Now())
	return b
}

// Len returns the number of instances, eligible or not.
func (b *Balancer[T]) Len() int { return len(b.instances) }

// Pick chooses an eligible instance for one call and counts the call as in
// flight on it. The caller must call [Lease.Done] exactly once when the call
// is over. Pick never blocks: when no instance is eligible it returns
// [ErrNoHealthyInstance] at once.
//
// An ejected instance becomes eligible again on the first Pick (or
// [Balancer.Snapshot]) after its ejection time has passed on the Balancer's
// clock.
func (b *Balancer[T]) Pick() (Lease[T], error) {
	v := b.view.Load()
	if v.ejected > 0 {
		if now := b.cfg.clock.Now(); !now.Before(v.nextReturn) {
			v = b.refresh(now)
		}
	}
	n := len(v.eligible)
	if n == 0 {
		return Lease[T]{}, ErrNoHealthyInstance
	}
	k := b.picker.Pick(Candidates{eligible: v.eligible, slots: b.slots})
	if k < 0 || k >= n {
		panic(fmt.Sprintf("balance: Picker %T returned %d for %d candidates", b.picker, k, n))
	}
	i := v.eligible[k]
	b.slots[i].inflight.Add(1)
	return Lease[T]{b: b, i: i}, nil
}

// refresh brings back the instances whose ejection is over at now and
// returns the new view.
func (b *Balancer[T]) refresh(now time.Time) *view {
	b.mu.Lock()
	b.returnDueLocked(now)
	v := b.view.Load()
	b.mu.Unlock()
	b.deliver()
	return v
}

// A Result tells the [Balancer] what one call says about the instance that
// served it.
type Result uint8

// The results of a call.
const (
	// Success is a call the instance handled: it answered, even if the
	// answer was an error caused by the caller (an invalid request). It
	// resets the instance's count of consecutive failures.
	Success Result = iota
	// Failure is a call the instance failed (it returned an internal error
	// or timed out). Consecutive failures eject the instance.
	Failure
	// Neutral is a call that says nothing about the instance, such as one
	// the caller canceled. It leaves the failure count as it was.
	Neutral
)

// String returns "success", "failure" or "neutral".
func (r Result) String() string {
	switch r {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Neutral:
		return "neutral"
	}
	return fmt.Sprintf("Result(%d)", uint8(r))
}

// A Lease is one call's hold on an instance, from [Balancer.Pick] to
// [Lease.Done]. It is a small value: copy it freely, but call Done once.
// The zero Lease, which Pick returns with an error, must not be used.
type Lease[T any] struct {
	b *Balancer[T]
	i int
}

// Instance returns the instance picked for the call.
func (l Lease[T]) Instance() T { return l.b.instances[l.i].Value }

// Name returns the name of the instance picked for the call.
func (l Lease[T]) Name() string { return l.b.instances[l.i].Name }

// Done ends the call and reports its result. It must be called exactly once
// per Lease. A [Failure] that completes a run of consecutive failures as
// long as the threshold ejects the instance, unless too many instances are
// ejected already or it is the last eligible one. Done panics if r is not
// one of the defined results.
func (l Lease[T]) Done(r Result) {
	b := l.b
	s := &b.slots[l.i]
	// The call leaves inflight before its result is counted, and Snapshot
	// reads the results before inflight, so that no call is counted twice.
	switch r {
	case Success:
		s.inflight.Add(-1)
		s.successes.Add(1)
		if s.fails.Load() != 0 {
			s.fails.Store(0)
		}
	case Failure:
		s.inflight.Add(-1)
		s.failures.Add(1)
		if n := s.fails.Add(1); n >= int64(b.cfg.failureThreshold) && b.maxEjected > 0 {
			b.failed(l.i)
		}
	case Neutral:
		s.inflight.Add(-1)
		s.neutrals.Add(1)
	default:
		panic(fmt.Sprintf("balance: Lease.Done(%v): unknown result", r))
	}
}

// failed ejects instance i if its failures call for it and the limits allow.
func (b *Balancer[T]) failed(i int) {
	now := b.cfg.clock.Now()
	b.mu.Lock()
	b.returnDueLocked(now)
	b.ejectLocked(i, now)
	b.mu.Unlock()
	b.deliver()
}

func (b *Balancer[T]) ejectLocked(i int, now time.Time) {
	st := &b.states[i]
	if st.ejected || !st.healthy || b.slots[i].fails.Load() < int64(b.cfg.failureThreshold) {
		return
	}
	v := b.view.Load()
	if v.ejected >= b.maxEjected || len(v.eligible) <= 1 {
		return
	}
	// The multiplier decays by one for each base ejection time the instance
	// has spent back in the pool since its last ejection.
	if st.multiplier > 0 {
		st.multiplier -= int(now.Sub(st.returnedAt) / b.cfg.ejectionTime)
		st.multiplier = max(st.multiplier, 0)
	}
	st.multiplier = min(st.multiplier+1, b.maxMultiplier)
	d := min(time.Duration(st.multiplier)*b.cfg.ejectionTime, b.cfg.maxEjectionTime)
	st.ejected = true
	st.until = now.Add(d)
	st.ejections++
	b.emitLocked(Event{Kind: Ejected, Instance: b.instances[i].Name, Index: i, Time: now, Until: st.until})
	b.rebuildLocked(now)
}

// returnDueLocked brings back every instance whose ejection is over at now.
// Each returns as of the end of its ejection, however late it is noticed.
func (b *Balancer[T]) returnDueLocked(now time.Time) {
	changed := false
	for i := range b.states {
		st := &b.states[i]
		if st.ejected && !now.Before(st.until) {
			b.returnLocked(i, st.until)
			changed = true
		}
	}
	if changed {
		b.rebuildLocked(now)
	}
}

// returnLocked ends the ejection of instance i at time at.
func (b *Balancer[T]) returnLocked(i int, at time.Time) {
	st := &b.states[i]
	st.ejected = false
	st.until = time.Time{}
	st.returnedAt = at
	b.slots[i].fails.Store(0)
	b.emitLocked(Event{Kind: Returned, Instance: b.instances[i].Name, Index: i, Time: at})
}

// rebuildLocked publishes a new view of the states at now. Passive ejection never
// leaves the pool empty: if every healthy instance is ejected (the others
// having gone down since), the one due back first returns at once.
func (b *Balancer[T]) rebuildLocked(now time.Time) {
	v := &view{}
	for i := range b.states {
		st := &b.states[i]
		switch {
		case st.ejected:
			if v.ejected == 0 || st.until.Before(v.nextReturn) {
				v.nextReturn = st.until
			}
			v.ejected++
		case st.healthy:
			v.eligible = append(v.eligible, i)
		}
	}
	if len(v.eligible) == 0 && v.ejected > 0 {
		first := -1
		for i := range b.states {
			st := &b.states[i]
			if st.ejected && st.healthy && (first < 0 || st.until.Before(b.states[first].until)) {
				first = i
			}
		}
		if first >= 0 {
			b.returnLocked(first, now)
			b.rebuildLocked(now)
			return
		}
	}
	b.view.Store(v)
}

// An InstanceState is a snapshot of one instance, for health and statistics
// pages.
type InstanceState struct {
	// Name is the instance's name.
	Name string
	// Eligible reports whether the instance may take calls: it is healthy
	// and not ejected.
	Eligible bool
	// Healthy reports whether the active health checks consider the
	// instance up. It is true for instances that are not checked.
	Healthy bool
	// EjectedUntil is when the current ejection ends, or the zero time if
	// the instance is not ejected.
	EjectedUntil time.Time
	// InFlight is the number of calls the instance is serving.
	InFlight int
	// ConsecutiveFailures is the number of calls in a row the instance has
	// failed.
	ConsecutiveFailures int
	// Ejections is how many times the instance has been ejected.
	Ejections int
	// Calls, Successes and Failures count the calls picked for the
	// instance and their results; Calls - Successes - Failures calls are
	// neutral or still in flight. Calls is never less than Successes +
	// Failures. While calls go on, the counters are read one by one, so
	// Calls may miss a call that ends during the snapshot.
	Calls, Successes, Failures uint64
	// CheckErr is the error of the last health check, or nil if it passed
	// or none has run.
	CheckErr error
}

// Snapshot returns the state of every instance, in the order given to
// [New]. Ejections that are over end before the snapshot is taken.
func (b *Balancer[T]) Snapshot() []InstanceState {
	now := b.cfg.clock.Now()
	out := make([]InstanceState, len(b.instances))
	b.mu.Lock()
	b.returnDueLocked(now)
	for i := range b.states {
		st, s := &b.states[i], &b.slots[i]
		// The results first, then inflight: a call that Done has counted
		// has left inflight by then (see Lease.Done).
		successes, failures, neutrals := s.successes.Load(), s.failures.Load(), s.neutrals.Load()
		inflight := s.inflight.Load()
		out[i] = InstanceState{
			Name:                b.instances[i].Name,
			Eligible:            st.healthy && !st.ejected,
			Healthy:             st.healthy,
			EjectedUntil:        st.until,
			InFlight:            int(inflight),
			ConsecutiveFailures: int(s.fails.Load()),
			Ejections:           st.ejections,
			Calls:               uint64(inflight) + successes + failures + neutrals,
			Successes:           successes,
			Failures:            failures,
			CheckErr:            st.checkErr,
		}
	}
	b.mu.Unlock()
	b.deliver()
	return out
}
