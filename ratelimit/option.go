package ratelimit

import "time"

// Defaults of the options.
const (
	// DefaultMaxKeys is the number of keys a Limiter keeps buckets for when
	// [WithMaxKeys] is not given.
	DefaultMaxKeys = 100_000
	// DefaultIdleTTL is how long an unused key's bucket is kept when
	// [WithIdleTTL] is not given.
	DefaultIdleTTL = 10 * time.Minute
)

// A Clock tells the time. *clocktest.Clock and any other value with a Now
// method satisfy it.
type Clock interface {
	Now() time.Time
}

// systemClock is the default Clock: the wall clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// An Option configures a [Limiter].
type Option func(*config)

type config struct {
	clock   Clock
	maxKeys int
	idleTTL time.Duration
	maxWait time.Duration
}

func defaultConfig() config {
	return config{
		clock:   systemClock{},
		maxKeys: DefaultMaxKeys,
		idleTTL: DefaultIdleTTL,
	}
}

// WithClock sets the clock the Limiter reads to refill buckets, to age idle
// keys and to measure a context's deadline. The default is the wall clock.
// The waits of [Limiter.Limit] are real timers of the length computed from
// the clock, so a fake clock suits tests of decisions, and testing/synctest
// suits tests of waiting. New panics if c is nil.
func WithClock(c Clock) Option { return func(cfg *config) { cfg.clock = c } }

// WithMaxKeys bounds the number of keys the Limiter keeps buckets for. The
// default is [DefaultMaxKeys].
//
// When a new key arrives and the bound is reached, the Limiter first evicts
// idle buckets and, if none is idle, the least recently used one, which
// resets that key's limit to a full bucket. Size the bound above the number
// of keys active within the idle TTL so that this stays a safety valve
// against floods of distinct keys. Bounds of 2047 or fewer keys are held as
// a single exact LRU; larger bounds are split into up to 64 shards of at
// least 1024 keys each (to spread lock contention), each bounded by its
// share and evicting its own least recently used key. New panics if n < 1.
func WithMaxKeys(n int) Option { return func(cfg *config) { cfg.maxKeys = n } }

// WithIdleTTL sets how long an unused key's bucket is kept. The default is
// [DefaultIdleTTL].
//
// A bucket is evicted only once it would be full again, so that a key whose
// bucket was evicted is treated exactly as one that kept it: the Limiter
// keeps a bucket at least burst/rate plus the [WithMaxWait] bound after its
// last use, however short d is. Zero means "as soon as it is full". New
// panics if d < 0.
func WithIdleTTL(d time.Duration) Option { return func(cfg *config) { cfg.idleTTL = d } }

// WithMaxWait sets how long [Limiter.Limit] may wait for a token before it
// rejects a call. A call that would have to wait longer, or past its
// context's deadline, is rejected at once, without waiting. The default is
// zero: Limit never waits. New panics if d < 0.
func WithMaxWait(d time.Duration) Option { return func(cfg *config) { cfg.maxWait = d } }
