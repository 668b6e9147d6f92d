// Package cache is a bounded in-memory cache whose entries expire a fixed
// time to live after they are stored, with miss coalescing: concurrent
// misses on one key cost one load.
//
// Use it in front of anything slow or expensive that answers the same
// question many times: a service call, a database query, a token lookup.
// [New] takes the capacity and the time to live; [Cache.GetOrLoad] is the
// usual entry point:
//
//	prices := cache.New[string, float64](10_000, time.Minute)
//	defer prices.Close()
//	price, err := prices.GetOrLoad(ctx, "INR", func(ctx context.Context) (float64, error) {
//		return backend.Price(ctx, "INR")
//	})
//
// The package knows nothing of requests or responses; proxy.Cached builds
// on it to cache a Service's responses, and any other store with the same
// Get and GetOrLoad methods can stand in for it there.
//
// # Eviction and expiry
//
// Entries live in least-recently-used caches from
// github.com/hashicorp/golang-lru/v2, each entry with its expiry time. A full
// cache evicts its least recently used entry to make room; an expired entry
// is not removed when it expires but is never returned as fresh, and it is
// replaced by the next load or evicted in turn. A large cache is split into
// shards by a hash of the key, each an LRU of its own with its own lock, so
// that lookups of different keys do not contend ([WithShards]); Len never
// exceeds the capacity.
//
// # Coalescing and cancellation
//
// A miss in [Cache.GetOrLoad] starts a flight: the load runs in a goroutine
// owned by the cache, on a context that keeps the first caller's values but
// not its deadline or cancellation, and every concurrent caller for the key
// waits for that one result. A caller whose context ends stops waiting at
// once and gets ctx.Err(); the load goes on for the others and is cancelled
// only when no caller is left. The goroutine ends when the load returns, so
// a load must honour its context. Errors are returned to every waiting
// caller and never cached.
//
// # Serving stale entries
//
// [WithStaleWhileRevalidate] serves an entry for a while after it expires,
// at once, while one background load refreshes it; [WithStaleIfError]
// serves a recently expired entry when the load that should replace it
// fails. Background refreshes are bounded: one per key, at most
// [WithMaxRefreshes] at once. [Cache.Close] cancels those nobody waits for
// and waits for every load goroutine; after Close the cache starts no more.
//
// # Concurrency and time
//
// A Cache is safe for concurrent use. A hit takes one lock, that of its
// shard's LRU, reads the clock once and does not allocate. The cache reads
// time from the [Clock] given by [WithClock], which tests replace with a
// fake; by default it reads the system's monotonic clock. No goroutine runs
// unless a load does: [New] starts none, and expiry is computed when an
// entry is read.
//
// [Cache.Stats] counts hits, misses, stale serves, evictions, loads and
// load errors.
package cache
