package ratelimit

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// A bucket is one key's token bucket.
//
// The decisions find a bucket in the Limiter's map without a lock, so a
// bucket may be evicted while a call is using it. Eviction marks the bucket
// dead before it checks that the bucket is full, and a call checks the mark
// after it has spent a token; whichever comes second sees the other (the
// limiter's mutex orders them). A call that finds the mark waits for the
// eviction to finish (under the shard's mutex) and, if the bucket is gone,
// decides again on the key's new bucket, so no token is lost with an evicted
// bucket.
type bucket struct {
	lim *rate.Limiter
	// lastUsed is the clock's time of the last use, in nanoseconds since the
	// Limiter's epoch, recorded to within the Limiter's resolution.
	lastUsed atomic.Int64
	// used reports whether the bucket was used since the eviction hand last
	// passed it.
	used atomic.Bool
	// dead reports whether the bucket is being evicted, or was.
	dead atomic.Bool

	// The fields below are set at creation or guarded by shard.mu.
	shard *shard
	key   string
	next  *bucket // the next bucket in the shard's queue
}

// touch records a use at now.
func (b *bucket) touch(now, resolution time.Duration) {
	if d := int64(now) - b.lastUsed.Load(); d > 0 && d >= int64(resolution) {
		b.lastUsed.Store(int64(now))
	}
	if !b.used.Load() {
		b.used.Store(true)
	}
}

// A shard keeps the books on the buckets of the keys that hash to it: how
// many there are, and the queue that the eviction hand walks.
type shard struct {
	// mu guards the fields below, the insertion and eviction of the shard's
	// buckets, and the fields of its buckets that say so.
	mu sync.Mutex
	// head and tail are the ends of the queue of the shard's buckets: the
	// eviction hand takes buckets from the head and sends those it spares
	// to the tail.
	head, tail *bucket
	n          int   // the number of buckets
	capacity   int   // the number of buckets the shard may hold
	swept      int64 // when the shard was last swept, as bucket.lastUsed

	_ [64]byte // keeps neighbouring shards' mutexes off one cache line
}

func (s *shard) push(b *bucket) {
	if s.tail == nil {
		s.head = b
	} else {
		s.tail.next = b
	}
	s.tail = b
	s.n++
}

// unlink removes b, which follows prev (nil for the head), from the queue.
func (s *shard) unlink(prev, b *bucket) {
	if prev == nil {
		s.head = b.next
	} else {
		prev.next = b.next
	}
	if s.tail == b {
		s.tail = prev
	}
	b.next = nil
	s.n--
}
