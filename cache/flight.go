package cache

import (
	"context"
	"errors"
)

// errLoadExited is what the callers of a load see when the load called
// runtime.Goexit (t.FailNow in a test) instead of returning.
var errLoadExited = errors.New("cache: load exited without returning")

// A flight is one load of one key, run in a goroutine of its own on a
// context detached from its callers, so that no single caller's
// cancellation fails the others.
//
// golang.org/x/sync/singleflight is not used. Its DoChan lets a caller stop
// waiting, but the group does not count who still waits, so a load could
// not be cancelled when its last caller leaves: it would run to the end for
// nobody. And its map cannot be locked together with the LRU, so closing the
// race between a late caller's lookup and a load's completion would cost a
// second lookup inside every load. A flight does both: it counts its
// waiters under the shard lock that also orders its completion against
// late callers.
type flight[V any] struct {
	done   chan struct{} // closed when the result below is set
	cancel func()        // cancels the load's context

	// Guarded by the shard's mu.
	waiters    int  // callers blocked on done
	background bool // a refresh: not cancelled when waiters drops to 0
	finished   bool // the result is set; done is closed or about to be

	// Set before done is closed, read after.
	value      V
	err        error
	served     served
	panicked   bool
	panicValue any
}

// served says where a flight's successful value came from.
type served uint8

const (
	servedLoad  served = iota // the load returned it
	servedStale               // an expired entry, after the load failed
	servedFresh               // a fresh entry, stored by Set while the load failed
)

// GetOrLoad returns the value stored under key. When it has no fresh value
// it calls load, stores a successful result for the cache's time to live and
// returns it; a failed load's error is returned, with the zero V, and not
// cached.
//
// Concurrent calls that miss on one key share one call of load: the first
// caller's load runs in a goroutine owned by the cache, and the others wait
// for its result. A caller whose ctx ends stops waiting at once and gets
// ctx.Err(); the others keep waiting, unharmed. The load runs on a context
// that carries the first caller's values but not its deadline or
// cancellation, and it is cancelled when the last waiting caller gives up,
// after which its result is discarded. load must honour its context.
//
// With [WithStaleWhileRevalidate], an entry that expired within the window
// is returned at once while one background load, bounded by
// [WithMaxRefreshes], replaces it. With [WithStaleIfError], callers of a
// failed load get an entry that expired within that window instead of the
// error.
//
// If load panics, every caller waiting for it panics with the same value in
// its own goroutine. A panic in a load nobody waits for (a background
// refresh) is re-raised in the load's goroutine and, like any unrecovered
// panic, ends the program: a panic is never swallowed.
//
// A hit neither allocates nor takes any lock but its shard's, once.
// GetOrLoad panics if load is nil.
func (c *Cache[K, V]) GetOrLoad(ctx context.Context, key K, load func(ctx context.Context) (V, error)) (V, error) {
	if load == nil {
		panic("cache: GetOrLoad with a nil load function")
	}
	s := c.shard(key)
	now := c.now()
	e, ok, fresh := s.lookup(key, now, false)
	if fresh {
		return e.value, nil
	}
	if ok && c.swr > 0 && now < after(e.expires, c.swr) {
		return c.serveStale(ctx, s, key, load)
	}
	return c.miss(ctx, s, key, load)
}

// serveStale answers with the stale entry under key and makes sure a
// refresh of it runs, unless the entry changed meanwhile.
func (c *Cache[K, V]) serveStale(ctx context.Context, s *shard[K, V], key K, load func(context.Context) (V, error)) (V, error) {
	now := c.now()
	s.mu.Lock()
	e, ok := s.lru.Peek(key)
	switch {
	case ok && now < e.expires: // refreshed since our lookup
		s.mu.Unlock()
		s.hits.Add(1)
		return e.value, nil
	case !ok || now >= after(e.expires, c.swr): // removed since
		s.mu.Unlock()
		return c.miss(ctx, s, key, load)
	}
	// A load already in flight will replace the entry; if its callers give
	// up and it is cancelled, a later stale serve starts a refresh.
	if s.flights[key] == nil && !c.closed.Load() && c.reserveRefresh() {
		c.start(ctx, s, key, load, true)
	}
	s.mu.Unlock()
	s.stale.Add(1)
	return e.value, nil
}

// reserveRefresh takes one of the maxRefreshes refresh slots, if one is
// free. The slot is given back when the flight finishes.
func (c *Cache[K, V]) reserveRefresh() bool {
	if c.refreshing.Add(1) > c.maxRefreshes {
		c.refreshing.Add(-1)
		return false
	}
	return true
}

// miss waits for a load of key, joining the one in flight or starting one.
func (c *Cache[K, V]) miss(ctx context.Context, s *shard[K, V], key K, load func(context.Context) (V, error)) (V, error) {
	if err := ctx.Err(); err != nil {
		s.misses.Add(1)
		var zero V
		return zero, err
	}
	now := c.now()
	s.mu.Lock()
	// A load may have stored key since our lookup; under mu, a flight is
	// either still registered or its value is in the LRU.
	if e, ok := s.lru.Get(key); ok && now < e.expires {
		s.mu.Unlock()
		s.hits.Add(1)
		return e.value, nil
	}
	f := s.flights[key]
	if f == nil {
		if c.closed.Load() {
			s.mu.Unlock()
			return c.loadHere(ctx, s, key, load)
		}
		f = c.start(ctx, s, key, load, false)
	}
	f.waiters++
	s.mu.Unlock()

	select {
	case <-f.done:
		return s.deliver(f)
	case <-ctx.Done():
		return c.leave(ctx, s, key, f)
	}
}

// start registers and starts a flight for key. s.mu must be held and the
// cache must not be closed.
func (c *Cache[K, V]) start(ctx context.Context, s *shard[K, V], key K, load func(context.Context) (V, error), background bool) *flight[V] {
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f := &flight[V]{done: make(chan struct{}), cancel: cancel, background: background}
	s.flights[key] = f
	s.loads.Add(1)
	c.wg.Add(1)
	go c.run(lctx, s, key, f, load)
	return f
}

// run calls load and hands its result to the flight's callers.
func (c *Cache[K, V]) run(ctx context.Context, s *shard[K, V], key K, f *flight[V], load func(context.Context) (V, error)) {
	defer c.wg.Done()
	var (
		value      V
		err        = errLoadExited // stays if load calls runtime.Goexit
		panicked   bool
		panicValue any
	)
	// The deferred call finishes the flight however load ends, so that no
	// caller waits forever.
	defer func() {
		if orphan := c.finish(s, key, f, value, err, panicked, panicValue); orphan && panicked {
			panic(panicValue)
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			panicked, panicValue = true, r
		}
	}()
	value, err = load(ctx)
}

// finish stores a successful result if the flight is still the current one
// for key, sets the result and wakes the callers. It reports whether no
// caller was waiting.
func (c *Cache[K, V]) finish(s *shard[K, V], key K, f *flight[V], value V, err error, panicked bool, panicValue any) (orphan bool) {
	f.cancel()
	failed := panicked || err != nil
	if failed {
		s.loadErrors.Add(1)
	}
	now := c.now()
	how := servedLoad
	evicted := false
	s.mu.Lock()
	if s.flights[key] == f {
		delete(s.flights, key)
		if !failed {
			evicted = s.lru.Add(key, entry[V]{value: value, expires: after(now, c.ttl)})
		}
	}
	if failed && !panicked && c.sie > 0 {
		if e, ok := s.lru.Peek(key); ok && now < after(e.expires, c.sie) {
			value, err, how = e.value, nil, servedStale
			if now < e.expires {
				how = servedFresh
			}
		}
	}
	if err != nil {
		var zero V
		value = zero
	}
	f.value, f.err, f.served = value, err, how
	f.panicked, f.panicValue = panicked, panicValue
	f.finished = true
	orphan = f.waiters == 0
	if f.background {
		c.refreshing.Add(-1)
	}
	s.mu.Unlock()
	close(f.done)
	if evicted {
		s.evictions.Add(1)
	}
	return orphan
}

// leave takes a caller whose ctx ended out of f, cancelling the load if it
// was the last caller of a foreground flight.
func (c *Cache[K, V]) leave(ctx context.Context, s *shard[K, V], key K, f *flight[V]) (V, error) {
	s.mu.Lock()
	if f.finished { // the result is there: take it rather than drop it
		s.mu.Unlock()
		<-f.done
		return s.deliver(f)
	}
	f.waiters--
	if f.waiters == 0 && (!f.background || c.closed.Load()) {
		f.cancel()
		if s.flights[key] == f {
			delete(s.flights, key) // its result is discarded
		}
	}
	s.mu.Unlock()
	s.misses.Add(1)
	var zero V
	return zero, ctx.Err()
}

// deliver returns a finished flight's result to one caller.
func (s *shard[K, V]) deliver(f *flight[V]) (V, error) {
	switch {
	case f.panicked:
		s.misses.Add(1)
		panic(f.panicValue)
	case f.err == nil && f.served == servedStale:
		s.stale.Add(1)
	case f.err == nil && f.served == servedFresh:
		s.hits.Add(1)
	default:
		s.misses.Add(1)
	}
	return f.value, f.err
}

// loadHere loads key in the calling goroutine, for a closed cache.
func (c *Cache[K, V]) loadHere(ctx context.Context, s *shard[K, V], key K, load func(context.Context) (V, error)) (V, error) {
	s.loads.Add(1)
	returned := false
	defer func() {
		if !returned { // panicked or exited; the panic goes on up
			s.loadErrors.Add(1)
			s.misses.Add(1)
		}
	}()
	value, err := load(ctx)
	returned = true
	now := c.now()
	if err == nil {
		s.mu.Lock()
		evicted := s.lru.Add(key, entry[V]{value: value, expires: after(now, c.ttl)})
		s.mu.Unlock()
		if evicted {
			s.evictions.Add(1)
		}
		s.misses.Add(1)
		return value, nil
	}
	s.loadErrors.Add(1)
	if c.sie > 0 {
		s.mu.Lock()
		e, ok := s.lru.Peek(key)
		s.mu.Unlock()
		if ok && now < after(e.expires, c.sie) {
			if now < e.expires {
				s.hits.Add(1)
			} else {
				s.stale.Add(1)
			}
			return e.value, nil
		}
	}
	s.misses.Add(1)
	var zero V
	return zero, err
}

// detach forgets the flight of key, if any, so that its result is not
// stored; a refresh nobody waits for is cancelled. s.mu must be held.
func (s *shard[K, V]) detach(key K) {
	if f := s.flights[key]; f != nil {
		delete(s.flights, key)
		if f.waiters == 0 {
			f.cancel()
		}
	}
}
