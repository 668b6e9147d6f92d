package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/cache"
	"github.com/proxykit/proxy/ratelimit"
	"github.com/proxykit/proxy/rediscache"
	"github.com/proxykit/proxy/redislimit"
)

// newRedisClient returns the client of the redis section, which every
// service's Redis limiter and cache share. It connects lazily: a gateway
// whose Redis is down starts, and its limiters apply their failure mode.
// Each call is bounded by the caller's context (the limiter's and cache's
// timeout), never retried by the client, so that a hung Redis costs one
// timeout, not several: a refused connection is not dialled again (the
// client's default is five dials 100ms apart), the limiter's retry
// interval decides when Redis is tried next.
func newRedisClient(c *redisConfig) (*redis.Client, error) {
	password := c.Password
	if c.PasswordEnv != "" {
		password = os.Getenv(c.PasswordEnv)
		if password == "" {
			return nil, fmt.Errorf("redis.password_env: the environment variable %s is empty or not set", c.PasswordEnv)
		}
	}
	return redis.NewClient(&redis.Options{
		Addr:                  c.Address,
		Password:              password,
		DB:                    c.DB,
		MaxRetries:            -1,
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
	}), nil
}

// redisLogger writes the Redis client's own messages (such as a failed dial)
// on the gateway's log, as warnings.
type redisLogger struct{ log *slog.Logger }

// Printf logs one message of the Redis client's.
func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)))
}

// errNoRedis refuses a reload whose services ask for Redis when the gateway
// started without a redis section.
var errNoRedis = errors.New("a service asks for store: redis, but the gateway started without a redis section; restart it to connect to Redis")

// usesRedis reports whether any service of cfg keeps its limit or cache in
// Redis.
func usesRedis(cfg *config) bool {
	for _, sc := range cfg.Services {
		if (sc.RateLimit != nil && sc.RateLimit.Store == "redis") || (sc.Cache != nil && sc.Cache.Enabled && sc.Cache.Store == "redis") {
			return true
		}
	}
	return false
}

// newLimiter returns the rate limiter of a service's rate_limit section:
// token buckets in memory, or one limit per key in Redis, shared by every
// replica, under keys of the service's own.
func (g *gateway) newLimiter(service string, rl *rateLimitConfig) (proxy.Limiter, *redislimit.Limiter) {
	if rl.Store != "redis" {
		return ratelimit.New(rate.Limit(rl.Rate), rl.Burst,
			ratelimit.WithMaxKeys(rl.MaxKeys), ratelimit.WithMaxWait(rl.MaxWait)), nil
	}
	rc := g.cfg.Redis
	mode := redislimit.FailOpen
	if rl.FailureMode == "closed" {
		mode = redislimit.FailClosed
	}
	lim := redislimit.New(g.shared.redis, rl.Rate, rl.Burst,
		redislimit.WithTimeout(rc.Timeout),
		redislimit.WithRetryInterval(rc.RetryInterval),
		redislimit.WithFailureMode(mode),
		redislimit.WithReplicas(rl.Replicas),
		redislimit.WithPrefix(rc.Prefix+"ratelimit:"+service+":"),
	)
	return lim, lim
}

// newResponseStore returns the store of a service's cache section: the
// in-process cache, and behind it, for store: redis, the Redis server the
// replicas share. The in-process cache is returned too, for closing.
func (g *gateway) newResponseStore(service string, cc *cacheConfig) (proxy.ResponseStore, *cache.Cache[string, *proxy.Response], *rediscache.Store) {
	local := cache.New[string, *proxy.Response](cc.Size, cc.TTL,
		cache.WithStaleWhileRevalidate(cc.StaleWhileRevalidate), cache.WithStaleIfError(cc.StaleIfError))
	if cc.Store != "redis" {
		return local, local, nil
	}
	rc := g.cfg.Redis
	store := rediscache.New(local, g.shared.redis, cc.TTL,
		rediscache.WithTimeout(rc.Timeout),
		rediscache.WithPrefix(rc.Prefix+"cache:"+service+":"))
	return store, local, store
}

// redisStats is a service's Redis figures, on the stats pages.
type redisStats struct {
	Limiter *redisLimiterStats `json:"limiter,omitempty"`
	Cache   *redisCacheStats   `json:"cache,omitempty"`
}

// redisCacheStats is a Redis cache's counters: lookups in Redis after a
// miss in memory.
type redisCacheStats struct {
	Hits   uint64 `json:"hits"`
	Misses uint64 `json:"misses"`
	Errors uint64 `json:"errors"`
}

// redisLimiterStats is a Redis rate limiter's state and counters.
type redisLimiterStats struct {
	Healthy     bool   `json:"healthy"`
	FailureMode string `json:"failure_mode"`
	RedisErrors uint64 `json:"redis_errors"`
	Fallbacks   uint64 `json:"fallbacks"`
}

// redisStats returns s's Redis figures, or nil when it uses no Redis.
func (s *serviceEntry) redisStats() *redisStats {
	if s.redisLimiter == nil && s.redisCache == nil {
		return nil
	}
	out := &redisStats{}
	if l := s.redisLimiter; l != nil {
		st := l.Stats()
		out.Limiter = &redisLimiterStats{Healthy: l.Healthy(), FailureMode: l.Mode().String(),
			RedisErrors: st.RedisErrors, Fallbacks: st.Fallbacks}
	}
	if c := s.redisCache; c != nil {
		st := c.Stats()
		out.Cache = &redisCacheStats{Hits: st.RemoteHits, Misses: st.RemoteMisses, Errors: st.RemoteErrors}
	}
	return out
}

// redisCollector exposes the Redis limiters' and caches' counters of the
// services being served. The counters belong to a service's stack, so a
// reload, which builds new stacks, starts them again from zero, which
// Prometheus's rate() and increase() take as a counter reset.
type redisCollector struct {
	g *gateway

	limiterErrors, limiterFallbacks, limiterHealthy *prometheus.Desc
	cacheHits, cacheMisses, cacheErrors             *prometheus.Desc
}

func newRedisCollector(g *gateway) *redisCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"service"}, nil)
	}
	return &redisCollector{
		g:                g,
		limiterErrors:    desc("gateway_redis_ratelimit_errors_total", "Redis calls of a service's rate limiter that failed or timed out."),
		limiterFallbacks: desc("gateway_redis_ratelimit_fallbacks_total", "Rate-limit decisions made without Redis, by the failure mode (open: a local limiter; closed: refused)."),
		limiterHealthy:   desc("gateway_redis_ratelimit_healthy", "1 when the last Redis call of a service's rate limiter succeeded, else 0."),
		cacheHits:        desc("gateway_redis_cache_hits_total", "In-process cache misses that Redis answered with a response another replica cached."),
		cacheMisses:      desc("gateway_redis_cache_misses_total", "In-process cache misses that Redis did not hold either."),
		cacheErrors:      desc("gateway_redis_cache_errors_total", "Redis cache calls that failed or timed out, or values that could not be read; each was a miss."),
	}
}

// Describe sends the descriptions of the Redis metrics.
func (c *redisCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.limiterErrors, c.limiterFallbacks, c.limiterHealthy, c.cacheHits, c.cacheMisses, c.cacheErrors} {
		ch <- d
	}
}

// Collect sends the figures of the current table's Redis limiters and
// caches.
func (c *redisCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.g.current()
	if t == nil {
		return
	}
	for _, name := range t.names {
		s := t.services[name]
		if l := s.redisLimiter; l != nil {
			st := l.Stats()
			healthy := 0.0
			if l.Healthy() {
				healthy = 1
			}
			ch <- prometheus.MustNewConstMetric(c.limiterErrors, prometheus.CounterValue, float64(st.RedisErrors), name)
			ch <- prometheus.MustNewConstMetric(c.limiterFallbacks, prometheus.CounterValue, float64(st.Fallbacks), name)
			ch <- prometheus.MustNewConstMetric(c.limiterHealthy, prometheus.GaugeValue, healthy, name)
		}
		if s.redisCache != nil {
			st := s.redisCache.Stats()
			ch <- prometheus.MustNewConstMetric(c.cacheHits, prometheus.CounterValue, float64(st.RemoteHits), name)
			ch <- prometheus.MustNewConstMetric(c.cacheMisses, prometheus.CounterValue, float64(st.RemoteMisses), name)
			ch <- prometheus.MustNewConstMetric(c.cacheErrors, prometheus.CounterValue, float64(st.RemoteErrors), name)
		}
	}
}
