package redislimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/proxykit/proxy/ratelimit"
)

// A FailureMode says what a Limiter does while Redis cannot be reached.
type FailureMode uint8

const (
	// FailOpen decides with a local limiter at the shared rate divided by
	// the number of replicas.
	FailOpen FailureMode = iota
	// FailClosed refuses every call.
	FailClosed
)

// String returns "fail-open" or "fail-closed".
func (m FailureMode) String() string {
	switch m {
	case FailOpen:
		return "fail-open"
	case FailClosed:
		return "fail-closed"
	}
	return fmt.Sprintf("FailureMode(%d)", uint8(m))
}

// A Clock tells the time. *clocktest.Clock is one, for tests.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

type config struct {
	timeout       time.Duration
	retryInterval time.Duration
	mode          FailureMode
	replicas      int
	prefix        string
	clock         Clock
}

// An Option configures a Limiter.
type Option func(*config)

// WithTimeout bounds each Redis call. The default is 50ms. A d of zero or
// less panics.
func WithTimeout(d time.Duration) Option {
	if d <= 0 {
		panic("redislimit: timeout must be positive")
	}
	return func(c *config) { c.timeout = d }
}

// WithRetryInterval sets how long Redis is left alone after a failed call
// before one call tries it again. The default is 200ms. A d of zero or less
// panics.
func WithRetryInterval(d time.Duration) Option {
	if d <= 0 {
		panic("redislimit: retry interval must be positive")
	}
	return func(c *config) { c.retryInterval = d }
}

// WithFailureMode sets what happens while Redis cannot be reached. The
// default is FailOpen.
func WithFailureMode(m FailureMode) Option {
	if m != FailOpen && m != FailClosed {
		panic("redislimit: unknown failure mode")
	}
	return func(c *config) { c.mode = m }
}

// WithReplicas sets how many replicas share the limit, so that under
// FailOpen each one's local limiter admits its share. The default is 1. A
// value below 1 panics.
func WithReplicas(n int) Option {
	if n < 1 {
		panic("redislimit: replicas must be at least 1")
	}
	return func(c *config) { c.replicas = n }
}

// WithPrefix sets the prefix of the Redis keys. The default is
// "proxy:ratelimit:". Limiters with different limits must not share a
// prefix.
func WithPrefix(p string) Option {
	return func(c *config) { c.prefix = p }
}

// WithClock sets the clock of the retry interval. The default is the system
// clock.
func WithClock(clk Clock) Option {
	if clk == nil {
		panic("redislimit: nil clock")
	}
	return func(c *config) { c.clock = clk }
}

// A Limiter admits calls per key at a rate shared through Redis. It is safe
// for concurrent use. Use New; the zero value is not usable.
type Limiter struct {
	redis    *redis_rate.Limiter
	limit    redis_rate.Limit
	cfg      config
	fallback *ratelimit.Limiter // nil under FailClosed

	// retryAt is the Unix nanosecond time before which Redis is not tried,
	// zero while Redis is healthy.
	retryAt atomic.Int64

	redisErrors atomic.Uint64
	fallbacks   atomic.Uint64
}

// New returns a Limiter that admits r calls a second per key with bursts of
// up to burst, counted in the Redis server client talks to. A non-positive
// or infinite r, or a burst below 1, panics: a shared limiter that admits
// everything or nothing is a configuration mistake. So does a client made
// without ContextTimeoutEnabled, since WithTimeout could not bound its calls.
func New(client redis.UniversalClient, r float64, burst int, opts ...Option) *Limiter {
	if client == nil {
		panic("redislimit: nil Redis client")
	}
	if !contextTimeouts(client) {
		panic("redislimit: the Redis client must be made with ContextTimeoutEnabled: true, " +
			"or a hung Redis holds calls for the client's own timeouts (seconds), not WithTimeout")
	}
	if !(r > 0) || math.IsInf(r, 1) {
		panic("redislimit: rate must be positive and finite")
	}
	if burst < 1 {
		panic("redislimit: burst must be at least 1")
	}
	c := config{
		timeout:       50 * time.Millisecond,
		retryInterval: 200 * time.Millisecond,
		replicas:      1,
		prefix:        "proxy:ratelimit:",
		clock:         systemClock{},
	}
	for _, o := range opts {
		o(&c)
	}
	l := &Limiter{redis: redis_rate.NewLimiter(client), limit: gcraLimit(r, burst), cfg: c}
	if c.mode == FailOpen {
		share := max(1, burst/c.replicas)
		l.fallback = ratelimit.New(rate.Limit(r/float64(c.replicas)), share, ratelimit.WithClock(c.clock))
	}
	return l
}

// contextTimeouts reports whether client lets a context's deadline bound a
// command's network reads and writes. go-redis does so only when the client
// was made with ContextTimeoutEnabled; without it a hung server holds a
// command for the client's dial and read timeouts. Clients of other types
// are trusted.
func contextTimeouts(client redis.UniversalClient) bool {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return true
}

// gcraLimit expresses r calls a second as the whole number of calls per
// period that redis_rate takes: per second when r is whole, else per 1000
// seconds, which keeps three decimal places of a fractional rate.
func gcraLimit(r float64, burst int) redis_rate.Limit {
	if r == math.Trunc(r) && r <= math.MaxInt32 {
		return redis_rate.Limit{Rate: int(r), Burst: burst, Period: time.Second}
	}
	return redis_rate.Limit{Rate: max(1, int(math.Round(r*1000))), Burst: burst, Period: 1000 * time.Second}
}

// Limit spends one of key's tokens if it has one and reports true. When it
// has none, it reports false and the time until it will, without waiting.
// While Redis cannot be reached, the failure mode decides: FailOpen asks the
// local limiter; FailClosed reports false with the retry interval as the
// time to wait. The error is ctx's, when ctx ended before a decision; a
// Redis failure is never returned, only counted (see Stats).
func (l *Limiter) Limit(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error) {
	if err := ctx.Err(); err != nil {
		return false, 0, err
	}
	if l.redisUsable() {
		rctx, cancel := context.WithTimeout(ctx, l.cfg.timeout)
		res, err := l.redis.Allow(rctx, l.cfg.prefix+key, l.limit)
		cancel()
		if err == nil {
			l.retryAt.Store(0)
			if res.Allowed > 0 {
				return true, 0, nil
			}
			return false, res.RetryAfter, nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return false, 0, ctxErr
		}
		l.redisErrors.Add(1)
		l.retryAt.Store(l.cfg.clock.Now().Add(l.cfg.retryInterval).UnixNano())
	}
	l.fallbacks.Add(1)
	if l.fallback == nil {
		return false, l.cfg.retryInterval, nil
	}
	ok, retryAfter = l.fallback.Take(key)
	return ok, retryAfter, nil
}

// redisUsable reports whether this call should ask Redis: always while it is
// healthy; after a failure, once the retry interval has passed, and then
// only for the one call that claims the retry, so a hung Redis holds up one
// call per interval, not all of them.
func (l *Limiter) redisUsable() bool {
	at := l.retryAt.Load()
	if at == 0 {
		return true
	}
	now := l.cfg.clock.Now().UnixNano()
	if now < at {
		return false
	}
	return l.retryAt.CompareAndSwap(at, now+l.cfg.retryInterval.Nanoseconds())
}

// Healthy reports whether the last Redis call succeeded.
func (l *Limiter) Healthy() bool { return l.retryAt.Load() == 0 }

// Mode returns the limiter's failure mode.
func (l *Limiter) Mode() FailureMode { return l.cfg.mode }

// Stats counts what a Limiter did since it was made.
type Stats struct {
	// RedisErrors counts Redis calls that failed or timed out.
	RedisErrors uint64
	// Fallbacks counts decisions made without Redis, by the failure mode.
	Fallbacks uint64
}

// Stats returns the limiter's counters.
func (l *Limiter) Stats() Stats {
	return Stats{RedisErrors: l.redisErrors.Load(), Fallbacks: l.fallbacks.Load()}
}

// Reset forgets key's bucket in Redis, so its next call finds a full burst.
func (l *Limiter) Reset(ctx context.Context, key string) error {
	if err := l.redis.Reset(ctx, l.cfg.prefix+key); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redislimit: reset %q: %w", key, err)
	}
	return nil
}
