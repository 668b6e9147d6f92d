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
// When a new key arrives and the bound is reached, the Limiter evicts the
// bucket of a key that was not used lately, found as the CLOCK algorithm
// approximates the least recently used one: a hand goes round the buckets,
// sparing (once) those used since it last passed. That key's next call gets
// a new, full bucket, so size the bound above the number of keys active
// within the idle TTL: the bound is a safety valve against floods of
// distinct keys. Bounds of 2047 or fewer keys are held in one shard; larger
// bounds are split into up to 64 shards of at least 1024 keys each (to
// spread lock contention), each bounded by its share and evicting its own
// keys. New panics if n < 1.
func WithMaxKeys(n int) Option { return func(cfg *config) { cfg.maxKeys = n } }

// WithIdleTTL sets how long an unused key's bucket is kept. The default is
// [DefaultIdleTTL].
//
// A bucket is evicted only once it is full again, so that a key whose bucket
// was evicted is treated exactly as one that kept it: the Limiter keeps a
// bucket at least burst/rate plus the [WithMaxWait] bound after its last
// use, however short d is, and checks that it is full before evicting it.
// Zero means "as soon as it is full". Last uses are recorded to within 1/16
// of that time (at most a second), and each shard is swept for idle buckets
// at most that often, by calls that add a key. New panics if d < 0.
func WithIdleTTL(d time.Duration) Option { return func(cfg *config) { cfg.idleTTL = d } }

// WithMaxWait sets how long [Limiter.Limit] may wait for a token before it
// rejects a call. A call that would have to wait longer, or past its
// context's deadline, is rejected at once, without waiting. The default is
// zero: Limit never waits. New panics if d < 0.
func WithMaxWait(d time.Duration) Option { return func(cfg *config) { cfg.maxWait = d } }
