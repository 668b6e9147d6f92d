package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// A bucket is one key's token bucket and its place in its shard's recency
// list.
type bucket struct {
	key string
	lim *rate.Limiter
	// The fields below are guarded by the mutex of the bucket's shard.
	lastUsed   time.Time // latest time the bucket was used; never moves back
	prev, next *bucket   // neighbours in the recency list
}

// A shard holds the buckets of the keys that hash to it.
type shard struct {
	// mu guards the fields below, the buckets' lastUsed and list links, and
	// every call on the buckets' limiters, so that a decision and the
	// eviction of its bucket never interleave.
	mu      sync.Mutex
	buckets map[string]*bucket
	// root is the sentinel of the recency list: root.next is the most
	// recently used bucket and root.prev the least recently used one.
	root bucket
	// capacity is the number of buckets the shard may hold.
	capacity int

	_ [64]byte // keeps neighbouring shards' mutexes off one cache line
}

func (s *shard) init(capacity int) {
	s.buckets = make(map[string]*bucket)
	s.root.next = &s.root
	s.root.prev = &s.root
	s.capacity = capacity
}

// touch records a use of b at now and makes b the most recently used bucket.
func (s *shard) touch(b *bucket, now time.Time) {
	if now.After(b.lastUsed) {
		b.lastUsed = now
	}
	if s.root.next == b {
		return
	}
	b.prev.next = b.next
	b.next.prev = b.prev
	s.pushFront(b)
}

func (s *shard) pushFront(b *bucket) {
	b.prev = &s.root
	b.next = s.root.next
	s.root.next.prev = b
	s.root.next = b
}

func (s *shard) remove(b *bucket) {
	b.prev.next = b.next
	b.next.prev = b.prev
	b.prev, b.next = nil, nil
	delete(s.buckets, b.key)
}

// evictIdle evicts, least recently used first, the buckets unused for at
// least idle. It stops at the first bucket used more recently, so its cost
// is one comparison plus the buckets it evicts: each bucket is evicted once,
// which amortises the sweep over the insertions.
func (s *shard) evictIdle(now time.Time, idle time.Duration) {
	for b := s.root.prev; b != &s.root && now.Sub(b.lastUsed) >= idle; b = s.root.prev {
		s.remove(b)
	}
}
