package ratelimit

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Sharding: a bound of maxKeys keys is split into up to maxShards shards of
// at least minShardKeys keys each.
const (
	maxShards    = 64
	minShardKeys = 1024
)

// mode is what a Limiter decides, fixed by its rate and burst.
type mode uint8

const (
	perKey    mode = iota // one token bucket per key
	admitAll              // rate.Inf: every call is admitted
	admitNone             // rate 0, burst 0: no call is admitted
)

// A Limiter limits the rate of calls per key: each key (a user id, a service
// name, a client address) has a token bucket of its own, holding up to burst
// tokens and refilled at rate tokens per second, as a [rate.Limiter] does.
//
// A Limiter keeps buckets only for the keys it has seen recently and at most
// [WithMaxKeys] of them, so its memory does not grow with the number of
// keys. See the package documentation for how buckets are evicted.
//
// A Limiter is safe for concurrent use. It starts no goroutines and needs no
// Close. The zero value is not usable; use [New].
type Limiter struct {
	mode  mode
	limit rate.Limit
	burst int
	clock Clock
	// system reports whether clock is the system clock, which now reads
	// more cheaply than through the Clock.
	system  bool
	maxWait time.Duration
	// idle is how long a bucket must go unused before it may be evicted:
	// the configured idle TTL, raised to the time an emptied bucket takes
	// to fill up again.
	idle time.Duration

	// resolution is how precisely a bucket records when it was last used:
	// recording each use would make every call write to shared memory.
	resolution time.Duration
	// epoch is the clock's time at New; buckets record times as offsets
	// from it.
	epoch time.Time

	// buckets maps each key to its *bucket. Lookups take no lock; a key's
	// bucket is added and removed only under its shard's mutex.
	buckets sync.Map
	seed    maphash.Seed
	mask    uint64 // len(shards)-1; len(shards) is a power of two
	shards  []shard
	// cursor picks the shard that an insertion sweeps besides its own, so
	// that every shard is swept in turn.
	cursor atomic.Uint64
}

// New returns a Limiter that admits calls for each key at rate r per second
// with bursts of up to burst calls. A new or idle key starts with a full
// bucket.
//
// r may be [rate.Inf] (or +Inf), which admits every call whatever burst is
// and keeps no buckets. A zero r with a zero burst admits no call at all.
// New panics with a "ratelimit:" message on a negative or NaN r, a negative
// burst, a zero burst with a nonzero finite r, a zero r with a nonzero burst
// (a bucket that never refills would be reset by eviction), and on invalid
// options (see each option). Misconfiguration never admits everything.
func New(r rate.Limit, burst int, opts ...Option) *Limiter {
	if math.IsInf(float64(r), 1) {
		r = rate.Inf
	}
	switch {
	case math.IsNaN(float64(r)) || r < 0:
		panic(fmt.Sprintf("ratelimit: New with rate %v; want a rate >= 0", float64(r)))
	case burst < 0:
		panic(fmt.Sprintf("ratelimit: New with burst %d; want a burst >= 0", burst))
	case r == 0 && burst != 0:
		panic(fmt.Sprintf("ratelimit: New with rate 0 and burst %d; a zero rate never refills, use burst 0 to admit nothing", burst))
	case r != 0 && r != rate.Inf && burst == 0:
		panic(fmt.Sprintf("ratelimit: New with rate %v and burst 0 would admit nothing; want a burst >= 1", float64(r)))
	}
	cfg := defaultConfig()
	for _, opt := range opts {
		if opt == nil {
			panic("ratelimit: New with a nil Option")
		}
		opt(&cfg)
	}
	switch {
	case cfg.clock == nil:
		panic("ratelimit: WithClock(nil)")
	case cfg.maxKeys < 1:
		panic(fmt.Sprintf("ratelimit: WithMaxKeys(%d); want at least 1", cfg.maxKeys))
	case cfg.idleTTL < 0:
		panic(fmt.Sprintf("ratelimit: WithIdleTTL(%v); want a duration >= 0", cfg.idleTTL))
	case cfg.maxWait < 0:
		panic(fmt.Sprintf("ratelimit: WithMaxWait(%v); want a duration >= 0", cfg.maxWait))
	}

	l := &Limiter{
		limit:   r,
		burst:   burst,
		clock:   cfg.clock,
		maxWait: cfg.maxWait,
	}
	switch r {
	case rate.Inf:
		l.mode = admitAll
		return l
	case 0:
		l.mode = admitNone
		return l
	}

	// An unused bucket was last left holding at least -maxWait*r tokens (a
	// reservation waits at most maxWait), so after burst/r + maxWait it is
	// full again and a new bucket would behave exactly like it.
	l.idle = cfg.idleTTL
	fill := math.Ceil(float64(burst)/float64(r)*float64(time.Second)) + float64(cfg.maxWait)
	if fill >= float64(math.MaxInt64) {
		l.idle = rate.InfDuration
	} else {
		l.idle = max(l.idle, time.Duration(fill))
	}

	l.resolution = min(time.Second, l.idle/16)
	l.epoch = cfg.clock.Now()
	_, l.system = cfg.clock.(systemClock)

	n := 1
	for n < maxShards && 2*n*minShardKeys <= cfg.maxKeys {
		n *= 2
	}
	l.seed = maphash.MakeSeed()
	l.mask = uint64(n - 1)
	l.shards = make([]shard, n)
	for i := range l.shards {
		capacity := cfg.maxKeys / n
		if i < cfg.maxKeys%n {
			capacity++
		}
		l.shards[i].capacity = capacity
	}
	return l
}

// Allow reports whether a call for key may happen now, and if so spends a
// token of key's bucket. It never waits for the rate (only, briefly, for a
// lock). Allow on a key with a bucket does not allocate.
func (l *Limiter) Allow(key string) bool {
	if l.mode != perKey {
		return l.mode == admitAll
	}
	now := l.now()
	for {
		b := l.bucket(key, now)
		ok := b.lim.AllowN(now, 1)
		if !b.dead.Load() || !l.gone(b) {
			return ok
		}
	}
}

// Take is [Limiter.Allow] that also says how long to wait when it rejects.
// It spends a token of key's bucket and reports true when one is available;
// otherwise it spends nothing and returns false and the time until a token
// will be, rounded up to the nanosecond. A Limiter that admits nothing
// returns [rate.InfDuration].
func (l *Limiter) Take(key string) (ok bool, retryAfter time.Duration) {
	switch l.mode {
	case admitAll:
		return true, 0
	case admitNone:
		return false, rate.InfDuration
	}
	now := l.now()
	for {
		b := l.bucket(key, now)
		ok := b.lim.AllowN(now, 1)
		var tokens float64
		if !ok {
			tokens = b.lim.TokensAt(now)
		}
		switch {
		case b.dead.Load() && l.gone(b):
			continue // decide again on the key's new bucket
		case ok:
			return true, 0
		case tokens < 1:
			return false, l.wait(tokens)
		}
		// A cancelled wait gave a token back after AllowN: try again.
	}
}

// Limit is [Limiter.Take] that may wait for a token, up to the
// [WithMaxWait] bound (zero by default: no waiting).
//
// Limit first returns ctx.Err() if ctx is already done. When key's bucket
// has a token, Limit spends it and returns true at once. When the next token
// is due within the bound and before ctx's deadline (measured on the
// Limiter's clock), Limit reserves it, waits for it and returns true. When
// it is due later, Limit reserves nothing and returns false and the time
// until it is due, at once, without waiting. When ctx is done during the
// wait, Limit cancels the reservation, so the token goes to later callers,
// and returns false, 0 and ctx.Err().
//
// Limit never fails for another reason; its error result lets it satisfy
// interfaces, such as proxy.Limiter, that limiters over a network also
// implement.
func (l *Limiter) Limit(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error) {
	if err := ctx.Err(); err != nil {
		return false, 0, err
	}
	switch l.mode {
	case admitAll:
		return true, 0, nil
	case admitNone:
		return false, rate.InfDuration, nil
	}
	now := l.now()
	for {
		b := l.bucket(key, now)
		if b.lim.AllowN(now, 1) {
			if b.dead.Load() && l.gone(b) {
				continue
			}
			return true, 0, nil
		}
		tokens := b.lim.TokensAt(now)
		maxWait := l.maxWait
		if deadline, has := ctx.Deadline(); has {
			maxWait = min(maxWait, l.until(deadline, now))
		}
		var res *rate.Reservation
		if retryAfter = l.wait(tokens); tokens < 1 && retryAfter <= maxWait {
			res = b.lim.ReserveN(now, 1)
		}
		switch {
		case b.dead.Load() && l.gone(b):
			continue // decide again on the key's new bucket
		case tokens >= 1:
			continue // a cancelled wait gave a token back after AllowN
		case res == nil:
			return false, retryAfter, nil
		}
		delay := res.DelayFrom(now)
		if delay > maxWait {
			// Calls since TokensAt took the token this one would wait for.
			res.CancelAt(now)
			return false, delay, nil
		}
		return l.await(ctx, res, delay)
	}
}

// await waits delay for the reservation res to come due, or for ctx to be
// done, in which case it cancels res.
func (l *Limiter) await(ctx context.Context, res *rate.Reservation, delay time.Duration) (ok bool, retryAfter time.Duration, err error) {
	if delay <= 0 {
		return true, 0, nil
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true, 0, nil
	case <-ctx.Done():
		res.CancelAt(l.now())
		return false, 0, ctx.Err()
	}
}

// now returns the time of a decision. With the system clock it reads the
// monotonic clock only, which costs half as much as [time.Now]: the time
// is the epoch plus the monotonic time since, and everything the Limiter
// and x/time/rate do with it is measure intervals between such times. Its
// wall-clock reading drifts from the real one if the wall clock is set
// after New, so a context's deadline is measured with until.
func (l *Limiter) now() time.Time {
	if l.system {
		return l.epoch.Add(time.Since(l.epoch))
	}
	return l.clock.Now()
}

// until returns how long from now (a time from l.now) until deadline.
func (l *Limiter) until(deadline, now time.Time) time.Duration {
	if l.system {
		return time.Until(deadline)
	}
	return deadline.Sub(now)
}

// Len returns the number of keys the Limiter holds buckets for. It never
// exceeds the [WithMaxKeys] bound. Idle buckets are evicted lazily, by later
// calls that add a key, so Len may count some that are idle but not yet
// evicted. A Limiter whose rate is [rate.Inf] or zero holds none.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += s.n
		s.mu.Unlock()
	}
	return n
}

// bucket returns key's bucket, recording a use at now, and adds a full one
// if the key has none.
func (l *Limiter) bucket(key string, now time.Time) *bucket {
	at := now.Sub(l.epoch)
	if v, ok := l.buckets.Load(key); ok {
		b := v.(*bucket)
		b.touch(at, l.resolution)
		return b
	}
	return l.insert(key, now)
}

// insert adds a bucket for key, unless another call just did. It first
// evicts the idle buckets of the key's shard and then, if the shard is still
// full, the bucket that the eviction hand finds unused; afterwards it sweeps
// the next shard in turn, so that a shard whose keys all went quiet is
// emptied by insertions in other shards.
func (l *Limiter) insert(key string, now time.Time) *bucket {
	at := now.Sub(l.epoch)
	s := l.shard(key)
	s.mu.Lock()
	if v, ok := l.buckets.Load(key); ok {
		s.mu.Unlock()
		b := v.(*bucket)
		b.touch(at, l.resolution)
		return b
	}
	l.sweep(s, now)
	if s.n >= s.capacity {
		l.evictUnused(s)
	}
	key = strings.Clone(key) // do not pin the memory the caller's key lives in
	b := &bucket{lim: rate.NewLimiter(l.limit, l.burst), shard: s, key: key}
	b.lastUsed.Store(int64(at))
	l.buckets.Store(key, b)
	s.push(b)
	s.mu.Unlock()

	if l.mask != 0 {
		next := &l.shards[l.cursor.Add(1)&l.mask]
		next.mu.Lock()
		l.sweep(next, now)
		next.mu.Unlock()
	}
	return b
}

// sweep evicts the buckets of s that are idle and full, if s was last swept
// at least a resolution ago: each bucket is looked at once per resolution at
// most, and only by calls that add a key, which pay for it. s.mu must be
// held.
func (l *Limiter) sweep(s *shard, now time.Time) {
	at := int64(now.Sub(l.epoch))
	if d := at - s.swept; l.idle == rate.InfDuration || d >= 0 && d < int64(l.resolution) {
		return
	}
	s.swept = at
	var prev *bucket
	for b := s.head; b != nil; {
		next := b.next
		if time.Duration(at-b.lastUsed.Load()) >= l.idle && l.evictIfFull(b, now) {
			s.unlink(prev, b)
		} else {
			prev = b
		}
		b = next
	}
}

// evictIfFull evicts b if it holds a full bucket of tokens at now, so that
// the new bucket its key gets next is no different. b's shard's mutex must be
// held.
func (l *Limiter) evictIfFull(b *bucket, now time.Time) bool {
	b.dead.Store(true) // before TokensAt: see the type bucket
	if b.lim.TokensAt(now) < float64(l.burst) {
		b.dead.Store(false)
		return false
	}
	l.buckets.Delete(b.key)
	return true
}

// evictUnused evicts a bucket of s to make room, the first the eviction hand
// finds unused since it last passed: an approximation of the least recently
// used one (the CLOCK algorithm). The bucket is evicted whatever it holds.
// s.mu must be held.
func (l *Limiter) evictUnused(s *shard) {
	for passes := 2 * s.n; ; passes-- {
		b := s.head
		s.unlink(nil, b)
		if b.used.Load() && passes > 0 {
			b.used.Store(false)
			s.push(b)
			continue
		}
		b.dead.Store(true)
		l.buckets.Delete(b.key)
		return
	}
}

// gone waits for an eviction of b in progress to finish and reports whether
// b was evicted. Call it when b.dead is set.
func (l *Limiter) gone(b *bucket) bool {
	b.shard.mu.Lock()
	defer b.shard.mu.Unlock()
	return b.dead.Load()
}

// shard returns the shard that keeps the books on key's bucket.
func (l *Limiter) shard(key string) *shard {
	if l.mask == 0 {
		return &l.shards[0]
	}
	return &l.shards[maphash.String(l.seed, key)&l.mask]
}

// wait returns how long a bucket holding tokens (fewer than one) takes to
// hold one, rounded up to the nanosecond. The rounding ignores the last
// bits of floating-point noise, so that 0.999 tokens at 1/s wait 1ms, not
// 1.000001ms.
func (l *Limiter) wait(tokens float64) time.Duration {
	d := math.Ceil((1 - tokens) / float64(l.limit) * float64(time.Second) * (1 - 1e-12))
	if d >= float64(math.MaxInt64) {
		return rate.InfDuration
	}
	return time.Duration(d)
}
