package ratelimit_test

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/time/rate"

	"github.com/proxykit/proxy/ratelimit"
)

// The benchmarks admit every call (a rate no benchmark can reach), so that
// they measure the success path: finding a key's bucket and spending a token.
const (
	benchRate  = rate.Limit(1e12)
	benchBurst = 1 << 30
	benchKeys  = 1000
)

func benchKeyNames() []string {
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(i)
	}
	return keys
}

// benchAllow runs allow over benchKeys existing keys, serially and from
// parallel goroutines, failing if a call is rejected.
func benchAllow(b *testing.B, allow func(key string) bool) {
	keys := benchKeyNames()
	for _, k := range keys {
		allow(k)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if !allow(keys[i%benchKeys]) {
				b.Fatal("rejected")
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var seq atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(seq.Add(1)) * 7919 // start the goroutines on different keys
			for pb.Next() {
				if !allow(keys[i%benchKeys]) {
					b.Error("rejected")
					return
				}
				i++
			}
		})
	})
}

func BenchmarkLimiterAllow(b *testing.B) {
	lim := ratelimit.New(benchRate, benchBurst)
	benchAllow(b, lim.Allow)
}

func BenchmarkLimiterTake(b *testing.B) {
	lim := ratelimit.New(benchRate, benchBurst)
	benchAllow(b, func(key string) bool {
		ok, _ := lim.Take(key)
		return ok
	})
}

// BenchmarkBaselineSyncMap is the bare per-key x/time/rate a Limiter is
// measured against: a sync.Map of *rate.Limiter and Allow, with no bound on
// the keys and no eviction.
func BenchmarkBaselineSyncMap(b *testing.B) {
	var limiters sync.Map
	benchAllow(b, func(key string) bool {
		l, ok := limiters.Load(key)
		if !ok {
			l, _ = limiters.LoadOrStore(key, rate.NewLimiter(benchRate, benchBurst))
		}
		return l.(*rate.Limiter).Allow()
	})
}

// BenchmarkBaselineMutexMap is the same baseline with a map under one mutex.
func BenchmarkBaselineMutexMap(b *testing.B) {
	var mu sync.Mutex
	limiters := make(map[string]*rate.Limiter)
	benchAllow(b, func(key string) bool {
		mu.Lock()
		l, ok := limiters[key]
		if !ok {
			l = rate.NewLimiter(benchRate, benchBurst)
			limiters[key] = l
		}
		mu.Unlock()
		return l.Allow()
	})
}

// BenchmarkLimiterNewKeys measures the insertion path: every call brings a
// key the limiter has not seen, under a bound that forces evictions.
func BenchmarkLimiterNewKeys(b *testing.B) {
	lim := ratelimit.New(benchRate, benchBurst, ratelimit.WithMaxKeys(benchKeys))
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		lim.Allow(keys[i%len(keys)])
		i++
	}
}
