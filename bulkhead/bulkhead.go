package bulkhead

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrFull is returned by Acquire when a key's limit of concurrent calls is
// reached and no slot freed up within the wait allowed.
var ErrFull = errors.New("bulkhead: full")

// defaultMaxIdleKeys is how many keys with nothing in flight keep their slot
// so that a busy key does not allocate on every call.
const defaultMaxIdleKeys = 1024

type config struct {
	maxWait     time.Duration
	maxIdleKeys int
}

// An Option configures a Bulkhead.
type Option func(*config)

// WithMaxWait sets how long Acquire waits for a slot before it gives up with
// ErrFull. The default, zero, rejects at once. A negative d panics.
func WithMaxWait(d time.Duration) Option {
	if d < 0 {
		panic("bulkhead: negative max wait")
	}
	return func(c *config) { c.maxWait = d }
}

// WithMaxIdleKeys sets how many keys with nothing in flight keep their
// bookkeeping, so that they need no allocation on their next call. Past it,
// a key's bookkeeping is dropped as soon as its last call ends. The default
// is 1024. A negative n panics.
func WithMaxIdleKeys(n int) Option {
	if n < 0 {
		panic("bulkhead: negative max idle keys")
	}
	return func(c *config) { c.maxIdleKeys = n }
}

// A Bulkhead admits at most a fixed number of concurrent calls per key. It is
// safe for concurrent use. Use New; the zero value is not usable.
type Bulkhead struct {
	limit   int
	max     uint64 // limit, as the count of holders in a slot's state
	maxWait time.Duration
	maxIdle int64

	// slots maps each key to its *slot. Lookups take no lock; a slot is
	// removed only when it is idle, and marked dead first (see slot).
	slots sync.Map
	// keys counts the slots in the map.
	keys atomic.Int64
	// counting is set once there have been more than maxIdle keys: from
	// then on idle counts the idle slots, those whose state has the
	// counted flag. Before, there cannot be too many idle slots, and
	// calls do not pay for counting them.
	counting atomic.Bool
	idle     atomic.Int64
	// mu serialises the start of counting.
	mu sync.Mutex
}

// A slot is one key's semaphore. Its state packs the number of holders of
// its places (the low 32 bits), the number of callers waiting for one (the
// next 30 bits) and the counted flag. While nobody waits, a call takes a
// place with one compare-and-swap and gives it back with another, with no
// lock. Waiting callers queue in order under mu, and a place given back
// while some wait is handed to the first of them, so that a newcomer cannot
// take it first.
//
// A slot with no holder and no waiter is idle; once the Bulkhead counts
// idle slots, an idle slot's state is the counted flag alone, set and
// cleared in the same compare-and-swap that makes it idle or busy, so that
// each idle slot is counted exactly once. A slot being removed is marked
// dead (state -1) first, so that a caller that finds it in the map
// afterwards looks again instead of using it.
type slot struct {
	state atomic.Int64

	// mu guards queue, and orders the changes of state that add or remove
	// waiters.
	mu    sync.Mutex
	queue []chan struct{} // closed when the waiter is handed a place
}

const (
	waiterUnit  = 1 << 32
	holderMask  = waiterUnit - 1
	waiterMask  = 1<<30 - 1
	counted     = 1 << 62
	dead        = -1
	countedIdle = counted // the state of an idle slot that is counted
)

func holders(state int64) uint64 { return uint64(state) & holderMask }
func waiters(state int64) int64  { return state >> 32 & waiterMask }

// New returns a Bulkhead that admits limit concurrent calls per key. A limit
// below one or a nil option panics.
func New(limit int, opts ...Option) *Bulkhead {
	if limit < 1 {
		panic("bulkhead: limit must be at least 1")
	}
	c := config{maxIdleKeys: defaultMaxIdleKeys}
	for _, o := range opts {
		if o == nil {
			panic("bulkhead: New with a nil Option")
		}
		o(&c)
	}
	return &Bulkhead{
		limit: limit,
		// More than 2^32-1 calls in flight cannot happen (each needs a
		// goroutine), so a larger limit behaves as that one.
		max:     min(uint64(limit), holderMask),
		maxWait: c.maxWait,
		maxIdle: int64(c.maxIdleKeys),
	}
}

// Limit returns the number of concurrent calls admitted per key.
func (b *Bulkhead) Limit() int { return b.limit }

// Acquire takes one of key's places, waiting up to the configured wait for
// one to free up. Callers that wait are served in the order they came. It
// returns ErrFull when no place freed up in time, or ctx's error when ctx
// ended first; either way nothing is held. A nil error must be matched by
// exactly one Release(key).
func (b *Bulkhead) Acquire(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for {
		s := b.slot(key)
		ok, live := b.take(s)
		switch {
		case !live:
			continue // removed meanwhile: look again
		case ok:
			return nil
		case b.maxWait == 0:
			return ErrFull
		}
		ready, live := b.enqueue(s)
		switch {
		case !live:
			continue
		case ready == nil: // a place freed up meanwhile, and is ours
			return nil
		}
		return b.wait(ctx, key, s, ready)
	}
}

// slot returns key's slot, adding an idle one if there is none.
func (b *Bulkhead) slot(key string) *slot {
	if v, ok := b.slots.Load(key); ok {
		return v.(*slot)
	}
	s := &slot{}
	v, loaded := b.slots.LoadOrStore(strings.Clone(key), s)
	if !loaded {
		// The new slot is not counted idle: the caller is about to take it.
		if b.keys.Add(1) > b.maxIdle && !b.counting.Load() {
			b.startCounting()
		}
	}
	return v.(*slot)
}

// startCounting starts counting the idle slots: it sets counting, then
// counts the slots that were idle already. A slot that goes idle after
// counting is set counts itself; one that went idle before is counted here;
// the compare-and-swap on its state counts it only once.
func (b *Bulkhead) startCounting() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.counting.Load() {
		return
	}
	b.counting.Store(true)
	b.slots.Range(func(k, v any) bool {
		b.idled(k.(string), v.(*slot), 0)
		return true
	})
}

// take takes a place of s if one is free and nobody waits for one. live is
// false when s is dead.
func (b *Bulkhead) take(s *slot) (ok, live bool) {
	for {
		st := s.state.Load()
		switch {
		case st == dead:
			return false, false
		case waiters(st) > 0 || holders(st) >= b.max:
			return false, true
		case s.state.CompareAndSwap(st, st&^counted+1):
			if st == countedIdle {
				b.idle.Add(-1)
			}
			return true, true
		}
	}
}

// enqueue queues the caller as a waiter of s and returns the channel that
// is closed when it is handed a place; or, when a place is free and nobody
// waits any more, takes it and returns nil. live is false when s is dead.
func (b *Bulkhead) enqueue(s *slot) (ready chan struct{}, live bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		st := s.state.Load()
		switch {
		case st == dead:
			return nil, false
		case waiters(st) == 0 && holders(st) < b.max:
			if s.state.CompareAndSwap(st, st&^counted+1) {
				if st == countedIdle {
					b.idle.Add(-1)
				}
				return nil, true
			}
		case s.state.CompareAndSwap(st, st&^counted+waiterUnit):
			if st == countedIdle {
				b.idle.Add(-1)
			}
			ready = make(chan struct{})
			s.queue = append(s.queue, ready)
			return ready, true
		}
	}
}

// wait waits until the caller, queued on s with ready, is handed a place,
// for up to the configured wait and while ctx lasts.
func (b *Bulkhead) wait(ctx context.Context, key string, s *slot, ready chan struct{}) error {
	timer := time.NewTimer(b.maxWait)
	defer timer.Stop()
	var err error
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = ErrFull
	}
	s.mu.Lock()
	i := slices.Index(s.queue, ready)
	if i < 0 { // handed a place just now: keep it
		s.mu.Unlock()
		return nil
	}
	s.queue = slices.Delete(s.queue, i, i+1)
	st := s.state.Add(-waiterUnit)
	s.mu.Unlock()
	b.idled(key, s, st)
	return err
}

// Release gives back a place that Acquire(key) took. Releasing a key that
// holds no place panics, as unlocking an unlocked mutex does.
func (b *Bulkhead) Release(key string) {
	v, ok := b.slots.Load(key)
	if !ok {
		panic("bulkhead: Release of a key with nothing acquired")
	}
	s := v.(*slot)
	for {
		st := s.state.Load()
		switch {
		case st == dead || holders(st) == 0:
			panic("bulkhead: Release of a key with nothing acquired")
		case waiters(st) > 0:
			if b.handOff(s) {
				return
			}
		case s.state.CompareAndSwap(st, st-1):
			b.idled(key, s, st-1)
			return
		}
	}
}

// handOff passes the caller's place of s to the first waiter, and reports
// false if nobody waits any more.
func (b *Bulkhead) handOff(s *slot) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return false
	}
	ready := s.queue[0]
	s.queue = slices.Delete(s.queue, 0, 1)
	s.state.Add(-waiterUnit) // one waiter fewer, as many holders
	close(ready)
	return true
}

// idled follows a change of the state of s, key's slot, to st. If that
// left s idle and the Bulkhead counts idle slots, it counts s and, past the
// bound on idle keys, removes it.
func (b *Bulkhead) idled(key string, s *slot, st int64) {
	if st != 0 || !b.counting.Load() || !s.state.CompareAndSwap(0, countedIdle) {
		return
	}
	if b.idle.Add(1) > b.maxIdle && s.state.CompareAndSwap(countedIdle, dead) {
		b.idle.Add(-1)
		b.slots.CompareAndDelete(key, s)
		b.keys.Add(-1)
	}
}

// InFlight returns how many calls hold a place for key now.
func (b *Bulkhead) InFlight(key string) int {
	if v, ok := b.slots.Load(key); ok {
		if st := v.(*slot).state.Load(); st != dead {
			return int(holders(st))
		}
	}
	return 0
}

// Keys returns how many keys have bookkeeping now: every key with a call in
// flight or waiting, plus at most the configured number of idle ones.
func (b *Bulkhead) Keys() int {
	n := 0
	b.slots.Range(func(_, v any) bool {
		if v.(*slot).state.Load() != dead {
			n++
		}
		return true
	})
	return n
}
