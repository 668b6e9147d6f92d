// Package bulkhead limits how many calls run at once, per key.
//
// A bulkhead keeps one saturated dependency from taking every goroutine,
// connection and byte of memory of the process with it: past the limit, a
// call waits a bounded time for a slot and is then rejected fast with
// [ErrFull], instead of queueing without bound. Shedding load this way keeps
// latency bounded for the calls that are admitted.
//
// # Use
//
//	bh := bulkhead.New(10, bulkhead.WithMaxWait(50*time.Millisecond))
//	if err := bh.Acquire(ctx, "payment"); err != nil {
//		return err // bulkhead.ErrFull, or ctx's error
//	}
//	defer bh.Release("payment")
//
// Keys are independent: each has its own limit of concurrent calls. A key
// with nothing in flight costs nothing once more than a bounded number of
// such keys exist.
//
// # How it composes
//
// The package knows nothing of requests: it counts keys. The root package's
// proxy.Bulkhead turns a Bulkhead into middleware that keys each call (by
// service, by default) and sheds the calls it refuses with an error that
// matches both proxy.ErrOverloaded and [ErrFull].
//
// # Defaults
//
// [New] takes the limit per key. By default a call over the limit is
// refused at once ([WithMaxWait] lets it wait), and the bookkeeping of up to
// 1024 idle keys is kept ([WithMaxIdleKeys]).
//
// # Concurrency and time
//
// A [Bulkhead] is safe for concurrent use. It starts no goroutines. While no
// caller waits for a key, taking and giving back one of its places is one
// atomic compare-and-swap each, without a lock; callers that wait queue in
// order and are handed places as they are given back. Acquire blocks at
// most the configured wait, and never past ctx's deadline; it reads no
// clock of its own beyond the timer of that wait.
package bulkhead
