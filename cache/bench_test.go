package cache_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/proxykit/proxy/cache"
)

// benchKeys are the keys the hit benchmarks spread over; the caches have
// room for four times as many, so that every shard holds its share.
const benchKeys = 1024

func benchKeyNames() []string {
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = "service\x00user-" + strconv.Itoa(i) + "\x00{\"amount\":100.5}"
	}
	return keys
}

func noLoad(context.Context) (int, error) { panic("load called on a hit") }

// BenchmarkLRUGet is the baseline: a bare golang-lru Get, one lock.
func BenchmarkLRUGet(b *testing.B) {
	keys := benchKeyNames()
	l, _ := lru.New[string, int](benchKeys)
	for i, k := range keys {
		l.Add(k, i)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l.Get(keys[i%benchKeys])
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var seq atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(seq.Add(1)) * 7919
			for pb.Next() {
				l.Get(keys[i%benchKeys])
				i++
			}
		})
	})
}

func BenchmarkGet(b *testing.B) {
	for _, shards := range []int{1, 16} {
		keys := benchKeyNames()
		c := cache.New[string, int](4*benchKeys, time.Hour, cache.WithShards(shards))
		for i, k := range keys {
			c.Set(k, i)
		}
		name := "shards=" + strconv.Itoa(shards)
		b.Run(name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := c.Get(keys[i%benchKeys]); !ok {
					b.Fatal("miss")
				}
				i++
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			var seq atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				i := int(seq.Add(1)) * 7919
				for pb.Next() {
					c.Get(keys[i%benchKeys])
					i++
				}
			})
		})
	}
}

func BenchmarkGetOrLoadHit(b *testing.B) {
	keys := benchKeyNames()
	c := cache.New[string, int](4*benchKeys, time.Hour) // default sharding: 16 shards
	for i, k := range keys {
		c.Set(k, i)
	}
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c.GetOrLoad(ctx, keys[i%benchKeys], noLoad)
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var seq atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(seq.Add(1)) * 7919
			for pb.Next() {
				c.GetOrLoad(ctx, keys[i%benchKeys], noLoad)
				i++
			}
		})
	})
}

// BenchmarkGetOrLoadMiss measures a miss: a flight, its goroutine and the
// store, with evictions since every key is new.
func BenchmarkGetOrLoadMiss(b *testing.B) {
	c := cache.New[int, int](benchKeys, time.Hour)
	defer c.Close()
	ctx := context.Background()
	load := func(context.Context) (int, error) { return 1, nil }
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.GetOrLoad(ctx, i, load)
		i++
	}
}
