package cache

import "time"

// A Clock tells a [Cache] the time. A *clocktest.Clock satisfies it, and so
// does any type with a Now method.
type Clock interface {
	Now() time.Time
}

// An Option configures a [Cache]. Options are applied by [New], which panics
// on an invalid one.
type Option func(*config)

type config struct {
	clock        Clock
	swr          time.Duration
	sie          time.Duration
	shards       int // 0: chosen from the capacity
	maxRefreshes int
}

const (
	// defaultMaxRefreshes is how many stale-while-revalidate refreshes may
	// run at once by default.
	defaultMaxRefreshes = 64
	// minShardCapacity is the smallest shard the default sharding makes, so
	// that a small cache is one exact LRU.
	minShardCapacity = 64
	// maxDefaultShards bounds the default shard count.
	maxDefaultShards = 16
)

// WithClock sets the clock the cache reads to stamp and expire entries. The
// default is the system's monotonic clock, which a change of the wall clock
// does not affect. WithClock panics if c is nil.
func WithClock(c Clock) Option {
	if c == nil {
		panic("cache: WithClock(nil)")
	}
	return func(cfg *config) { cfg.clock = c }
}

// WithStaleWhileRevalidate lets [Cache.GetOrLoad] serve an entry that expired
// less than d ago once more, at once, while one background load refreshes
// it. The default, 0, turns it off: an expired entry is a miss. It panics if
// d is negative.
//
// Background refreshes are bounded: at most one runs per key, at most
// [WithMaxRefreshes] run at once, and [Cache.Close] cancels and waits for
// them. When no refresh may start, the stale entry is still served; d bounds
// how stale a served entry can be.
func WithStaleWhileRevalidate(d time.Duration) Option {
	if d < 0 {
		panic("cache: negative stale-while-revalidate window " + d.String())
	}
	return func(cfg *config) { cfg.swr = d }
}

// WithStaleIfError lets [Cache.GetOrLoad] serve an entry that expired less
// than d ago when the load that should have replaced it fails; the callers
// then get the stale value and no error. The error is not cached: the next
// call loads again. The default, 0, turns it off. It panics if d is
// negative.
func WithStaleIfError(d time.Duration) Option {
	if d < 0 {
		panic("cache: negative stale-if-error window " + d.String())
	}
	return func(cfg *config) { cfg.sie = d }
}

// WithMaxRefreshes sets how many stale-while-revalidate refreshes may run at
// once across the whole cache. The default is 64. It panics if n < 1.
func WithMaxRefreshes(n int) Option {
	if n < 1 {
		panic("cache: WithMaxRefreshes needs n >= 1")
	}
	return func(cfg *config) { cfg.maxRefreshes = n }
}

// WithShards splits the cache into n independent LRUs, chosen by a hash of
// the key, each with its own lock, so that concurrent lookups of different
// keys do not contend. The capacity is divided between them, so Len never
// exceeds it, but eviction is least-recently-used within a shard rather than
// across the cache. WithShards(1) gives one exact LRU.
//
// The default is one shard below a capacity of 128 and otherwise the largest
// power of two, at most 16, that leaves each shard at least 64 entries.
// WithShards panics if n < 1, and New if n exceeds the capacity.
func WithShards(n int) Option {
	if n < 1 {
		panic("cache: WithShards needs n >= 1")
	}
	return func(cfg *config) { cfg.shards = n }
}

// defaultShards returns the shard count for a capacity when WithShards is
// not given.
func defaultShards(capacity int) int {
	n := 1
	for n < maxDefaultShards && capacity/(2*n) >= minShardCapacity {
		n *= 2
	}
	return n
}
