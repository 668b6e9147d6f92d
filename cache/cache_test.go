package cache_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/proxykit/proxy/cache"
	"github.com/proxykit/proxy/internal/clocktest"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func TestNewPanicsOnInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		new  func()
	}{
		{"zero capacity", func() { cache.New[string, int](0, time.Minute) }},
		{"negative capacity", func() { cache.New[string, int](-1, time.Minute) }},
		{"zero ttl", func() { cache.New[string, int](1, 0) }},
		{"negative ttl", func() { cache.New[string, int](1, -time.Second) }},
		{"nil clock", func() { cache.New[string, int](1, time.Minute, cache.WithClock(nil)) }},
		{"nil option", func() { cache.New[string, int](1, time.Minute, nil) }},
		{"negative stale-while-revalidate", func() {
			cache.New[string, int](1, time.Minute, cache.WithStaleWhileRevalidate(-1))
		}},
		{"negative stale-if-error", func() { cache.New[string, int](1, time.Minute, cache.WithStaleIfError(-1)) }},
		{"zero max refreshes", func() { cache.New[string, int](1, time.Minute, cache.WithMaxRefreshes(0)) }},
		{"zero shards", func() { cache.New[string, int](1, time.Minute, cache.WithShards(0)) }},
		{"more shards than capacity", func() { cache.New[string, int](3, time.Minute, cache.WithShards(4)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				msg, ok := r.(string)
				if !ok || len(msg) < 7 || msg[:7] != "cache: " {
					t.Errorf("panic = %#v, want a string starting with %q", r, "cache: ")
				}
			}()
			tt.new()
		})
	}
}

func TestGetSetExpiry(t *testing.T) {
	const ttl = 10 * time.Second
	type step struct {
		advance time.Duration
		set     bool // Set("k", value) before the lookup
		value   int
		want    int
		wantOK  bool
	}
	tests := []struct {
		name  string
		opts  []cache.Option
		steps []step
	}{
		{"fresh until the ttl", nil, []step{
			{set: true, value: 1, want: 1, wantOK: true},
			{advance: ttl - time.Nanosecond, want: 1, wantOK: true},
			{advance: time.Nanosecond, want: 0, wantOK: false}, // expires at exactly ttl
		}},
		{"Set refreshes the ttl", nil, []step{
			{set: true, value: 1, want: 1, wantOK: true},
			{advance: ttl - time.Second, set: true, value: 2, want: 2, wantOK: true},
			{advance: ttl - time.Second, want: 2, wantOK: true},
			{advance: time.Second, want: 0, wantOK: false},
		}},
		{"Get never serves stale", []cache.Option{
			cache.WithStaleWhileRevalidate(time.Hour), cache.WithStaleIfError(time.Hour),
		}, []step{
			{set: true, value: 1, want: 1, wantOK: true},
			{advance: ttl, want: 0, wantOK: false},
		}},
		{"absent", nil, []step{
			{want: 0, wantOK: false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktest.New(t0)
			c := cache.New[string, int](4, ttl, append(tt.opts, cache.WithClock(clk))...)
			t.Cleanup(func() { c.Close() })
			for i, st := range tt.steps {
				clk.Advance(st.advance)
				if st.set {
					c.Set("k", st.value)
				}
				if got, ok := c.Get("k"); got != st.want || ok != st.wantOK {
					t.Fatalf("step %d: Get(%q) = %v, %v, want %v, %v", i, "k", got, ok, st.want, st.wantOK)
				}
			}
		})
	}
}

func TestRemove(t *testing.T) {
	c := cache.New[string, int](4, time.Minute)
	c.Set("a", 1)
	if got := c.Remove("a"); !got {
		t.Errorf("Remove(%q) = %v, want true", "a", got)
	}
	if got := c.Remove("a"); got {
		t.Errorf("second Remove(%q) = %v, want false", "a", got)
	}
	if _, ok := c.Get("a"); ok {
		t.Errorf("Get(%q) after Remove: ok = true, want false", "a")
	}
	if got := c.Len(); got != 0 {
		t.Errorf("Len() = %d, want 0", got)
	}
}

func TestLeastRecentlyUsedIsEvicted(t *testing.T) {
	c := cache.New[string, int](2, time.Minute) // one shard: an exact LRU
	c.Set("a", 1)
	c.Set("b", 2)
	c.Get("a") // b is now the least recently used
	c.Set("c", 3)
	for _, tt := range []struct {
		key    string
		wantOK bool
	}{{"a", true}, {"b", false}, {"c", true}} {
		if _, ok := c.Get(tt.key); ok != tt.wantOK {
			t.Errorf("Get(%q): ok = %v, want %v", tt.key, ok, tt.wantOK)
		}
	}
	if got := c.Stats().Evictions; got != 1 {
		t.Errorf("Stats().Evictions = %d, want 1", got)
	}
}

func TestLenNeverExceedsCapacity(t *testing.T) {
	tests := []struct {
		capacity int
		opts     []cache.Option
	}{
		{1, nil},
		{7, []cache.Option{cache.WithShards(3)}}, // uneven split: 3+2+2
		{100, []cache.Option{cache.WithShards(7)}},
		{128, nil}, // default: two shards
		{1000, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.capacity), func(t *testing.T) {
			c := cache.New[int, int](tt.capacity, time.Minute, tt.opts...)
			for k := range 10 * tt.capacity {
				c.Set(k, k)
				if got := c.Len(); got > tt.capacity {
					t.Fatalf("Len() after %d Sets = %d, want <= %d", k+1, got, tt.capacity)
				}
			}
			if got := c.Len(); got != tt.capacity {
				// Each shard is full after 10x its share of random keys
				// with overwhelming probability, and the shares add up.
				t.Errorf("Len() = %d, want %d", got, tt.capacity)
			}
			st := c.Stats()
			if want := uint64(9 * tt.capacity); st.Evictions != want {
				t.Errorf("Stats().Evictions = %d, want %d", st.Evictions, want)
			}
		})
	}
}

func TestStatsCountGet(t *testing.T) {
	clk := clocktest.New(t0)
	c := cache.New[string, int](4, time.Second, cache.WithClock(clk))
	c.Set("a", 1)
	c.Get("a") // hit
	c.Get("b") // miss: absent
	clk.Advance(time.Second)
	c.Get("a") // miss: expired
	want := cache.Stats{Hits: 1, Misses: 2}
	if got := c.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}
