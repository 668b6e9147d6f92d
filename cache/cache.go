package cache

import (
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// A Cache is a bounded least-recently-used map from K to V in which every
// entry expires a fixed time to live after it was stored. Concurrent misses
// on one key through [Cache.GetOrLoad] share one load.
//
// A Cache is safe for concurrent use. Use [New]; the zero value is not
// usable. A Cache that may run background refreshes
// ([WithStaleWhileRevalidate]) should be closed with [Cache.Close].
type Cache[K comparable, V any] struct {
	ttl, swr, sie int64 // nanoseconds
	// clock is the injected clock, or nil for the system's monotonic clock,
	// which is read without the wall clock: on a hit, reading the time is
	// the largest cost after the LRU's own.
	clock Clock
	// base is the clock's time when the cache was made; the cache keeps
	// time as nanoseconds since base.
	base         time.Time
	seed         maphash.Seed
	shards       []*shard[K, V]
	maxRefreshes int64

	// refreshing counts the flights marked background; it is changed
	// under the flight's shard lock.
	refreshing atomic.Int64
	// closed is set by Close; flights are started only while it is false,
	// checked under the shard lock, so that every wg.Add precedes Close's
	// wg.Wait.
	closed atomic.Bool
	// wg counts the running flight goroutines.
	wg sync.WaitGroup
}

// entry is what the LRU holds: the value and when it expires, in
// nanoseconds since the cache's base time.
type entry[V any] struct {
	value   V
	expires int64
}

// A shard is one LRU with its flights and counters.
type shard[K comparable, V any] struct {
	// mu guards lru, flights and the mutable fields of every flight in
	// flights, and orders a load's completion (store, then forget the
	// flight) against late callers, which look at the LRU again under mu
	// before they join or start a flight. A hit takes mu once: a plain
	// mutex around golang-lru's unsynchronised LRU is two atomic operations
	// where the read-write mutex of its thread-safe Cache is four.
	mu      sync.Mutex
	lru     *simplelru.LRU[K, entry[V]]
	flights map[K]*flight[V]
	// lookupHits and lookupMisses count, under mu, the outcomes of the
	// first look of Get and GetOrLoad, so that a hit costs no atomic
	// operation besides the lock's. Other outcomes go to the atomic
	// counters below.
	lookupHits, lookupMisses uint64

	hits, misses, stale, evictions, loads, loadErrors atomic.Uint64

	_ [64]byte // keeps the next shard's counters off this cache line
}

// New returns a Cache that holds at most capacity entries, each fresh for
// ttl after it was stored. It panics if capacity < 1, if ttl <= 0 or if an
// option is invalid.
func New[K comparable, V any](capacity int, ttl time.Duration, opts ...Option) *Cache[K, V] {
	if capacity < 1 {
		panic("cache: capacity " + strconv.Itoa(capacity) + " < 1")
	}
	if ttl <= 0 {
		panic("cache: non-positive ttl " + ttl.String())
	}
	cfg := config{maxRefreshes: defaultMaxRefreshes}
	for _, o := range opts {
		if o == nil {
			panic("cache: nil Option")
		}
		o(&cfg)
	}
	n := cfg.shards
	if n == 0 {
		n = defaultShards(capacity)
	}
	if n > capacity {
		panic("cache: " + strconv.Itoa(n) + " shards for a capacity of " + strconv.Itoa(capacity))
	}
	c := &Cache[K, V]{
		ttl:          int64(ttl),
		swr:          int64(cfg.swr),
		sie:          int64(cfg.sie),
		clock:        cfg.clock,
		base:         time.Now(),
		seed:         maphash.MakeSeed(),
		shards:       make([]*shard[K, V], n),
		maxRefreshes: int64(cfg.maxRefreshes),
	}
	if c.clock != nil {
		c.base = c.clock.Now()
	}
	for i := range c.shards {
		size := capacity / n
		if i < capacity%n {
			size++
		}
		l, err := simplelru.NewLRU[K, entry[V]](size, nil)
		if err != nil { // size >= 1, so NewLRU cannot fail
			panic("cache: " + err.Error())
		}
		c.shards[i] = &shard[K, V]{lru: l, flights: make(map[K]*flight[V])}
	}
	return c
}

// now returns the time in nanoseconds since c.base.
func (c *Cache[K, V]) now() int64 {
	if c.clock == nil {
		return int64(time.Since(c.base)) // monotonic: no wall clock read
	}
	return int64(c.clock.Now().Sub(c.base))
}

// after returns t+d, saturated so that a huge ttl or window cannot wrap
// around to the past.
func after(t, d int64) int64 {
	if t > math.MaxInt64-d {
		return math.MaxInt64
	}
	return t + d
}

// shard returns the shard that holds key.
func (c *Cache[K, V]) shard(key K) *shard[K, V] {
	if len(c.shards) == 1 {
		return c.shards[0]
	}
	h := maphash.Comparable(c.seed, key)
	return c.shards[uint64(uint32(h))*uint64(len(c.shards))>>32]
}

// Get returns the value stored under key and true if it is fresh. An
// expired entry is never returned by Get, whatever the stale windows: only
// [Cache.GetOrLoad] serves stale entries. Get never blocks on a load.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	e, _, fresh := c.shard(key).lookup(key, c.now(), true)
	if !fresh {
		var zero V
		return zero, false
	}
	return e.value, true
}

// lookup returns key's entry in s, whether there is one, and whether it is
// fresh at now. It counts a fresh entry as a hit, and with countMiss
// anything else as a miss, under the lock the lookup holds anyway. The
// clock is read by the caller, before the lock is taken.
func (s *shard[K, V]) lookup(key K, now int64, countMiss bool) (e entry[V], found, fresh bool) {
	s.mu.Lock()
	e, found = s.lru.Get(key)
	fresh = found && now < e.expires
	switch {
	case fresh:
		s.lookupHits++
	case countMiss:
		s.lookupMisses++
	}
	s.mu.Unlock()
	return e, found, fresh
}

// Set stores value under key, fresh for the cache's time to live, evicting
// the least recently used entry of its shard if the shard is full. A load of
// key in flight when Set is called still answers its callers, but its result
// is not stored over value.
func (c *Cache[K, V]) Set(key K, value V) {
	s := c.shard(key)
	e := entry[V]{value: value, expires: after(c.now(), c.ttl)}
	s.mu.Lock()
	s.detach(key)
	evicted := s.lru.Add(key, e)
	s.mu.Unlock()
	if evicted {
		s.evictions.Add(1)
	}
}

// Remove deletes key and reports whether it was present. A load of key in
// flight when Remove is called still answers its callers, but its result is
// not stored, so that a value loaded before an invalidation does not outlive
// it; the next [Cache.GetOrLoad] of key loads afresh.
func (c *Cache[K, V]) Remove(key K) bool {
	s := c.shard(key)
	s.mu.Lock()
	s.detach(key)
	present := s.lru.Remove(key)
	s.mu.Unlock()
	return present
}

// Len returns the number of entries held, expired ones included until they
// are replaced or evicted. It never exceeds the capacity.
func (c *Cache[K, V]) Len() int {
	n := 0
	for _, s := range c.shards {
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}

// Stats is a snapshot of a [Cache]'s counters. They count lookups: every
// call of [Cache.Get] and [Cache.GetOrLoad] counts exactly one of Hits,
// StaleServes and Misses, so a caller that tries Get before GetOrLoad, as
// proxy.Cached does, counts a miss for each.
type Stats struct {
	// Hits counts calls answered with a fresh entry.
	Hits uint64
	// Misses counts calls answered neither fresh nor stale: a Get that
	// found no fresh entry, and a GetOrLoad that waited for a load (whether
	// it succeeded or failed) or gave up waiting.
	Misses uint64
	// StaleServes counts GetOrLoad calls answered with an expired entry,
	// under [WithStaleWhileRevalidate] or [WithStaleIfError].
	StaleServes uint64
	// Evictions counts entries dropped to make room for another.
	Evictions uint64
	// Loads counts calls of a load function: one per coalesced miss and
	// one per background refresh.
	Loads uint64
	// LoadErrors counts loads that returned an error or panicked.
	LoadErrors uint64
}

// Stats returns the cache's counters. The counters are read one by one, so
// a snapshot taken while the cache is busy need not be consistent across
// fields.
func (c *Cache[K, V]) Stats() Stats {
	var st Stats
	for _, s := range c.shards {
		s.mu.Lock()
		st.Hits += s.lookupHits
		st.Misses += s.lookupMisses
		s.mu.Unlock()
		st.Hits += s.hits.Load()
		st.Misses += s.misses.Load()
		st.StaleServes += s.stale.Load()
		st.Evictions += s.evictions.Load()
		st.Loads += s.loads.Load()
		st.LoadErrors += s.loadErrors.Load()
	}
	return st
}

// Close cancels the background refreshes that no caller waits for, waits
// for every load goroutine the cache started to return, and returns nil.
// Loads that callers are still waiting for are not cancelled: Close waits
// for them, and they end when they return or when their last caller gives
// up.
//
// After Close the cache still answers every method, but it starts no
// goroutine: [Cache.GetOrLoad] runs a load in the calling goroutine, without
// coalescing, and no background refresh starts. Close may be called more
// than once.
func (c *Cache[K, V]) Close() error {
	c.closed.Store(true)
	for _, s := range c.shards {
		s.mu.Lock()
		for _, f := range s.flights {
			if f.waiters == 0 {
				f.cancel()
			}
		}
		s.mu.Unlock()
	}
	c.wg.Wait()
	return nil
}
