// Package redislimit is a rate limiter shared by every replica of a service,
// kept in Redis.
//
// One gateway process can keep its token buckets in memory
// ([github.com/proxykit/proxy/ratelimit]); several replicas behind a load
// balancer cannot, or each would admit the whole limit. A [Limiter] here
// keeps one bucket per key in Redis and decides atomically on the server,
// with the generic cell rate algorithm of
// [github.com/go-redis/redis_rate/v10] (one Lua script, one round trip), so
// that all replicas together admit what one limiter would.
//
// It has the same Limit method as the in-memory limiter, so the root
// package's Limited wrapper takes either.
//
// # When Redis is slow or down
//
// A Redis call never waits past a short timeout ([WithTimeout]). When it
// fails, the caller's choice applies:
//
//   - [FailOpen] (the default) decides with a local in-memory limiter whose
//     rate and burst are divided by the expected number of replicas, so the
//     replicas together still admit about the shared limit.
//   - [FailClosed] refuses every call until Redis answers again.
//
// After a failure Redis is left alone for a short interval
// ([WithRetryInterval]); then one call tries it again, and when it answers
// the shared limit is back in force. No goroutine watches Redis.
//
// # Concurrency and time
//
// A [Limiter] is safe for concurrent use and starts no goroutines. The
// buckets run on Redis's clock (the script reads the server's TIME), so every
// replica sees the same time; the retry interval runs on the injected clock
// ([WithClock]).
package redislimit
