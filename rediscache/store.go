package rediscache

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/cache"
)

type config struct {
	timeout time.Duration
	prefix  string
}

// An Option configures a Store.
type Option func(*config)

// WithTimeout bounds each Redis call. The default is 50ms. A d of zero or
// less panics.
func WithTimeout(d time.Duration) Option {
	if d <= 0 {
		panic("rediscache: timeout must be positive")
	}
	return func(c *config) { c.timeout = d }
}

// WithPrefix sets the prefix of the Redis keys. The default is
// "proxy:cache:".
func WithPrefix(p string) Option {
	return func(c *config) { c.prefix = p }
}

// A Store is a two-level [proxy.ResponseStore]: memory, then Redis. It is safe
// for concurrent use. Use New; the zero value is not usable.
type Store struct {
	local   *cache.Cache[string, *proxy.Response]
	client  redis.UniversalClient
	ttl     time.Duration
	timeout time.Duration
	prefix  string

	remoteHits   atomic.Uint64
	remoteMisses atomic.Uint64
	remoteErrors atomic.Uint64
}

var _ proxy.ResponseStore = (*Store)(nil)

// New returns a Store over the in-process cache local and the Redis server
// client talks to, where responses live for ttl. A nil local or client, or a
// ttl of zero or less, panics; so does a client made without
// ContextTimeoutEnabled, since the timeout could not bound its calls.
func New(local *cache.Cache[string, *proxy.Response], client redis.UniversalClient, ttl time.Duration, opts ...Option) *Store {
	if local == nil {
		panic("rediscache: nil local cache")
	}
	if client == nil {
		panic("rediscache: nil Redis client")
	}
	if c, ok := client.(*redis.Client); ok && !c.Options().ContextTimeoutEnabled {
		panic("rediscache: the Redis client must be made with ContextTimeoutEnabled: true")
	}
	if ttl <= 0 {
		panic("rediscache: ttl must be positive")
	}
	c := config{timeout: 50 * time.Millisecond, prefix: "proxy:cache:"}
	for _, o := range opts {
		o(&c)
	}
	return &Store{local: local, client: client, ttl: ttl, timeout: c.timeout, prefix: c.prefix}
}

// Get returns the response stored in memory under key. It never calls
// Redis: it is the hit path of [proxy.Cached].
func (s *Store) Get(key string) (*proxy.Response, bool) {
	return s.local.Get(key)
}

// GetOrLoad returns the response stored under key in memory or, failing
// that, in Redis; failing both, it calls load and stores a successful result
// in both. Concurrent calls for one key share one lookup and one load. A
// Redis failure counts as a miss.
func (s *Store) GetOrLoad(ctx context.Context, key string, load func(context.Context) (*proxy.Response, error)) (*proxy.Response, error) {
	return s.local.GetOrLoad(ctx, key, func(ctx context.Context) (*proxy.Response, error) {
		if resp, ok := s.fetch(ctx, key); ok {
			return resp, nil
		}
		resp, err := load(ctx)
		if err != nil {
			return nil, err
		}
		s.store(ctx, key, resp)
		return resp, nil
	})
}

// fetch looks key up in Redis.
func (s *Store) fetch(ctx context.Context, key string) (*proxy.Response, bool) {
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	raw, err := s.client.Get(rctx, s.prefix+key).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		s.remoteMisses.Add(1)
		return nil, false
	case err != nil:
		s.remoteErrors.Add(1)
		return nil, false
	}
	var resp proxy.Response
	if err := json.Unmarshal(raw, &resp); err != nil {
		// Not ours, or written by an incompatible version: a miss.
		s.remoteErrors.Add(1)
		return nil, false
	}
	s.remoteHits.Add(1)
	return &resp, true
}

// store writes resp to Redis under key, for the Store's TTL. A failure is
// counted and otherwise ignored: the response is still served and cached in
// memory.
func (s *Store) store(ctx context.Context, key string, resp *proxy.Response) {
	raw, err := json.Marshal(resp)
	if err != nil {
		s.remoteErrors.Add(1)
		return
	}
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.client.Set(rctx, s.prefix+key, raw, s.ttl).Err(); err != nil {
		s.remoteErrors.Add(1)
	}
}

// Stats counts what a Store did in Redis since it was made. Hits and misses
// in memory are the in-process cache's own Stats.
type Stats struct {
	// RemoteHits counts lookups that Redis answered with a response.
	RemoteHits uint64
	// RemoteMisses counts lookups that Redis answered with nothing.
	RemoteMisses uint64
	// RemoteErrors counts Redis calls that failed or timed out, and values
	// in Redis that could not be read; each was treated as a miss.
	RemoteErrors uint64
}

// Stats returns the Store's Redis counters.
func (s *Store) Stats() Stats {
	return Stats{
		RemoteHits:   s.remoteHits.Load(),
		RemoteMisses: s.remoteMisses.Load(),
		RemoteErrors: s.remoteErrors.Load(),
	}
}
