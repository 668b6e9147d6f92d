// Package ratelimit limits the rate of calls per key with token buckets
// from [golang.org/x/time/rate], keeping memory bounded however many keys
// there are.
//
// # When to use it
//
// Use a [Limiter] when each user, client or service should get a rate of its
// own: one [rate.Limiter] per key, created on first use. A single
// [rate.Limiter] suffices when all calls share one limit. The package knows
// nothing of requests: the caller picks the key. The proxy package's Limited
// wrapper turns a Limiter into middleware that keys each request (by user,
// by service) and turns a rejection into a proxy.RateLimitError.
//
//	lim := ratelimit.New(100, 10) // 100 calls per second per key, bursts of 10
//	if ok, retryAfter := lim.Take(userID); !ok {
//		return fmt.Errorf("slow down, retry in %v", retryAfter)
//	}
//
// # Decisions
//
// [Limiter.Allow] reports whether a call may happen now. [Limiter.Take] also
// says how long to wait when it may not. [Limiter.Limit] may wait for a
// token, up to the [WithMaxWait] bound and never past its context's
// deadline; it refuses at once a call that would have to wait longer.
// Rejected calls spend no token.
//
// # Memory
//
// A Limiter holds a bucket only for keys seen recently, and at most
// [WithMaxKeys] of them ([DefaultMaxKeys] by default). A bucket unused for
// the [WithIdleTTL] ([DefaultIdleTTL] by default) is evicted, but never
// before it is full again (burst/rate, plus the WithMaxWait bound, after its
// last use), so eviction is invisible: an evicted key gets a new full
// bucket, exactly what the old one held. Eviction is lazy and amortised: a
// call that adds a key sweeps the idle buckets out of its own shard and out
// of one other shard, taken in turn, each shard at most once per 1/16 of the
// idle time (at most once a second). When a key arrives and the bound is
// reached, a bucket unused lately is evicted (the CLOCK approximation of
// the least recently used one), which resets that key's bucket to full:
// size the bound above the number of keys active within the idle TTL.
//
// # Concurrency and time
//
// A Limiter is safe for concurrent use. A call finds its key's bucket
// without taking a lock (in a [sync.Map]), and takes only the lock inside
// the bucket's [rate.Limiter], so calls for different keys do not contend
// and Allow on a key with a bucket allocates nothing. Adding and evicting
// buckets happens under the mutex of one of up to 64 shards. No goroutine is
// started: buckets refill lazily, computed from the time of each call, as in
// x/time/rate.
//
// The Limiter reads time from a [Clock] ([WithClock]; the wall clock by
// default) and passes it to x/time/rate, so tests of decisions use a fake
// clock. The waits of Limit are real timers of the length computed from the
// clock; tests of waiting run in a testing/synctest bubble.
package ratelimit
