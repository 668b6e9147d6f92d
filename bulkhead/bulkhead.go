package bulkhead

import (
	"context"
	"errors"
	"sync"
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
	maxWait time.Duration
	maxIdle int

	// mu guards slots and idle.
	mu    sync.Mutex
	slots map[string]*slot
	idle  int // entries of slots whose users count is zero
}

// A slot is one key's semaphore. users counts the callers that hold or wait
// for one of its places; the slot may be dropped only when it is zero.
type slot struct {
	sem   chan struct{}
	users int
}

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
		limit:   limit,
		maxWait: c.maxWait,
		maxIdle: c.maxIdleKeys,
		slots:   make(map[string]*slot),
	}
}

// Limit returns the number of concurrent calls admitted per key.
func (b *Bulkhead) Limit() int { return b.limit }

// Acquire takes one of key's places, waiting up to the configured wait for
// one to free up. It returns ErrFull when none did, or ctx's error when ctx
// ended first; either way nothing is held. A nil error must be matched by
// exactly one Release(key).
func (b *Bulkhead) Acquire(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s := b.use(key)
	select {
	case s.sem <- struct{}{}:
		return nil
	default:
	}
	if b.maxWait == 0 {
		b.unuse(key, s)
		return ErrFull
	}
	timer := time.NewTimer(b.maxWait)
	defer timer.Stop()
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		b.unuse(key, s)
		return ctx.Err()
	case <-timer.C:
		b.unuse(key, s)
		return ErrFull
	}
}

// Release gives back a place that Acquire(key) took. Releasing a key that
// holds no place panics, as unlocking an unlocked mutex does.
func (b *Bulkhead) Release(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.slots[key]
	if s == nil || len(s.sem) == 0 {
		panic("bulkhead: Release of a key with nothing acquired")
	}
	<-s.sem
	b.unuseLocked(key, s)
}

// InFlight returns how many calls hold a place for key now.
func (b *Bulkhead) InFlight(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.slots[key]; s != nil {
		return len(s.sem)
	}
	return 0
}

// Keys returns how many keys have bookkeeping now: every key with a call in
// flight or waiting, plus at most the configured number of idle ones.
func (b *Bulkhead) Keys() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.slots)
}

// use returns key's slot, creating it if needed, and counts the caller as
// one of its users.
func (b *Bulkhead) use(key string) *slot {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.slots[key]
	switch {
	case s == nil:
		s = &slot{sem: make(chan struct{}, b.limit)}
		b.slots[key] = s
	case s.users == 0:
		b.idle--
	}
	s.users++
	return s
}

// unuse ends one caller's use of key's slot, dropping the slot when nobody
// uses it and enough idle slots are kept already.
func (b *Bulkhead) unuse(key string, s *slot) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.unuseLocked(key, s)
}

// unuseLocked is unuse with b.mu held.
func (b *Bulkhead) unuseLocked(key string, s *slot) {
	s.users--
	if s.users > 0 {
		return
	}
	if b.idle >= b.maxIdle {
		delete(b.slots, key)
		return
	}
	b.idle++
}
