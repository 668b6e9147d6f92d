// Package rediscache shares cached responses between the replicas of a
// service through Redis.
//
// A [Store] is a [proxy.ResponseStore] of two levels: the in-process
// [cache.Cache] first, Redis second. A hit in memory costs what it costs
// without Redis. A miss in memory looks in Redis, so that a response one
// replica cached is a hit on every other; a miss there too calls the service
// once (concurrent misses on one key are coalesced by the in-process cache)
// and stores the response in both levels.
//
// Redis is an optimisation, never a dependency: a Redis call is bounded by a
// short timeout, and a Redis failure or timeout is a miss (the service is
// called), never a failed call. Failures are counted in [Store.Stats].
//
// # Time to live
//
// A response lives in Redis for the Store's TTL from when it was stored, and
// in memory for the in-process cache's TTL from when that replica got it. A
// response one replica takes from Redis late in its life can so be served
// by that replica for up to the sum of the two; give the in-process cache a
// TTL no longer than Redis's, and short where that staleness matters.
//
// # Concurrency
//
// A Store is safe for concurrent use and starts no goroutines of its own; the
// in-process cache runs loads as its documentation says.
package rediscache
