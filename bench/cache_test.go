package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/cachepolicy"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/cache"
)

// benchCacheSize holds every user's entry with room to spare.
const benchCacheSize = 4 * benchUsers

// lruCache adapts a golang-lru cache to failsafe-go's cachepolicy.Cache, so
// that failsafe-go's cache policy runs on the same store as the bare
// baseline.
type lruCache struct {
	*lru.Cache[string, *proxy.Response]
}

func (c lruCache) Get(key string) (*proxy.Response, bool) { return c.Cache.Get(key) }
func (c lruCache) Set(key string, v *proxy.Response)      { c.Cache.Add(key, v) }

func newLRU(b *testing.B) *lru.Cache[string, *proxy.Response] {
	l, err := lru.New[string, *proxy.Response](benchCacheSize)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkCache measures a cache hit keyed by proxy.KeyByRequest (service,
// user and canonical data). Ours returns the caller its own copy of the
// stored response, as Cached promises; the bare baseline and failsafe-go
// hand out the stored pointer itself.
func BenchmarkCache(b *testing.B) {
	store := cache.New[string, *proxy.Response](benchCacheSize, time.Hour)
	ours := viaService(proxy.Chain(backend, proxy.Cached(store, proxy.KeyByRequest)))
	warm(b, ours)
	run(b, "ours", ours)

	// The bare mechanism: the key function and an LRU Get.
	l := newLRU(b)
	for _, req := range benchReqs {
		l.Add(proxy.KeyByRequest(req), benchResp)
	}
	run(b, "bare", func(ctx context.Context, req *proxy.Request) bool {
		resp, ok := l.Get(proxy.KeyByRequest(req))
		return ok && resp != nil
	})

	exec := failsafe.With[*proxy.Response](cachepolicy.New[*proxy.Response](lruCache{newLRU(b)}))
	fs := func(ctx context.Context, req *proxy.Request) bool {
		ctx = cachepolicy.ContextWithCacheKey(ctx, proxy.KeyByRequest(req))
		resp, err := exec.WithContext(ctx).Get(func() (*proxy.Response, error) { return backend.Process(ctx, req) })
		return err == nil && resp != nil
	}
	warm(b, fs)
	run(b, "failsafe", fs)
}

// BenchmarkKeyByRequest measures the key function alone, over the small
// request data of the cache benchmarks.
func BenchmarkKeyByRequest(b *testing.B) {
	run(b, "ours", func(_ context.Context, req *proxy.Request) bool {
		return proxy.KeyByRequest(req) != ""
	})
}
