package cache_test

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proxykit/proxy/cache"
	"github.com/proxykit/proxy/internal/clocktest"
)

// flightLoader is a load function whose calls block until released, and
// that counts its calls.
type flightLoader struct {
	calls   atomic.Int64
	release chan struct{}
	value   string
	err     error
	// canceled records whether a call saw its context cancelled.
	canceled atomic.Bool
}

func newFlightLoader(value string) *flightLoader {
	return &flightLoader{release: make(chan struct{}), value: value}
}

func (l *flightLoader) load(ctx context.Context) (string, error) {
	l.calls.Add(1)
	select {
	case <-l.release:
	case <-ctx.Done():
		l.canceled.Store(true)
		return "", ctx.Err()
	}
	return l.value, l.err
}

// flightResult is what one GetOrLoad call returned.
type flightResult struct {
	value string
	err   error
}

// goLoad calls c.GetOrLoad(ctx, key, load) in a new goroutine and returns a
// channel that gets its result.
func goLoad(ctx context.Context, c *cache.Cache[string, string], key string, load func(context.Context) (string, error)) <-chan flightResult {
	ch := make(chan flightResult, 1)
	go func() {
		v, err := c.GetOrLoad(ctx, key, load)
		ch <- flightResult{v, err}
	}()
	return ch
}

func TestGetOrLoadCoalescesConcurrentMisses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const callers = 1000
		c := cache.New[string, string](16, time.Minute)
		defer c.Close()
		l := newFlightLoader("v")
		results := make([]<-chan flightResult, callers)
		for i := range results {
			results[i] = goLoad(t.Context(), c, "k", l.load)
		}
		synctest.Wait() // every caller is blocked: one in the load, the rest waiting for it
		if got := l.calls.Load(); got != 1 {
			t.Fatalf("load calls with %d callers waiting = %d, want 1", callers, got)
		}
		close(l.release)
		for i, ch := range results {
			if r := <-ch; r.value != "v" || r.err != nil {
				t.Fatalf("caller %d: GetOrLoad = %q, %v, want %q, <nil>", i, r.value, r.err, "v")
			}
		}
		want := cache.Stats{Misses: callers, Loads: 1}
		if got := c.Stats(); got != want {
			t.Errorf("Stats() = %+v, want %+v", got, want)
		}
	})
}

// TestGetOrLoadLateCallerRacingCompletion starts late callers at the moment
// the load completes, many times over: whether one joins the flight, finds
// the value stored, or finds it on its first lookup, the load runs once.
func TestGetOrLoadLateCallerRacingCompletion(t *testing.T) {
	const rounds, early, late = 100, 4, 16
	c := cache.New[string, string](rounds, time.Minute, cache.WithShards(1))
	defer c.Close()
	for round := range rounds {
		key := strconv.Itoa(round)
		l := newFlightLoader("v" + key)
		var wg sync.WaitGroup
		results := make(chan flightResult, early+late)
		var released atomic.Bool
		call := func() {
			defer wg.Done()
			v, err := c.GetOrLoad(context.Background(), key, l.load)
			results <- flightResult{v, err}
		}
		wg.Add(early)
		for range early {
			go call()
		}
		for l.calls.Load() == 0 { // until the load has started
			runtime.Gosched()
		}
		// The late callers spin until the load is released, then race its
		// completion.
		var started atomic.Int64
		wg.Add(late)
		for range late {
			go func() {
				started.Add(1)
				for !released.Load() {
					runtime.Gosched()
				}
				call()
			}()
		}
		for started.Load() < late {
			runtime.Gosched()
		}
		released.Store(true)
		close(l.release)
		wg.Wait()
		close(results)
		for r := range results {
			if r.value != "v"+key || r.err != nil {
				t.Fatalf("round %d: GetOrLoad = %q, %v, want %q, <nil>", round, r.value, r.err, "v"+key)
			}
		}
		if got := l.calls.Load(); got != 1 {
			t.Fatalf("round %d: load calls = %d, want 1", round, got)
		}
	}
}

func TestGetOrLoadCallerGivingUpDoesNotFailOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const others = 99
		c := cache.New[string, string](16, time.Minute)
		defer c.Close()
		l := newFlightLoader("v")
		firstCtx, cancelFirst := context.WithCancel(t.Context())
		first := goLoad(firstCtx, c, "k", l.load)
		synctest.Wait() // the first caller's load is running
		results := make([]<-chan flightResult, others)
		for i := range results {
			results[i] = goLoad(t.Context(), c, "k", l.load)
		}
		synctest.Wait()
		cancelFirst()
		if r := <-first; !errors.Is(r.err, context.Canceled) {
			t.Fatalf("first caller: GetOrLoad = %q, %v, want error %v", r.value, r.err, context.Canceled)
		}
		close(l.release)
		for i, ch := range results {
			if r := <-ch; r.value != "v" || r.err != nil {
				t.Fatalf("waiting caller %d: GetOrLoad = %q, %v, want %q, <nil>", i, r.value, r.err, "v")
			}
		}
		if l.canceled.Load() {
			t.Error("the load's context was cancelled while callers waited for it")
		}
		if got := l.calls.Load(); got != 1 {
			t.Errorf("load calls = %d, want 1", got)
		}
	})
}

func TestGetOrLoadLastCallerGivingUpCancelsLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := cache.New[string, string](16, time.Minute)
		defer c.Close()
		abandoned := newFlightLoader("old")
		ctx, cancel := context.WithCancel(t.Context())
		a := goLoad(ctx, c, "k", abandoned.load)
		b := goLoad(ctx, c, "k", abandoned.load)
		synctest.Wait()
		cancel()
		for _, ch := range []<-chan flightResult{a, b} {
			if r := <-ch; !errors.Is(r.err, context.Canceled) {
				t.Fatalf("GetOrLoad = %q, %v, want error %v", r.value, r.err, context.Canceled)
			}
		}
		synctest.Wait() // the abandoned load has seen the cancellation and returned
		if !abandoned.canceled.Load() {
			t.Fatal("the load's context was not cancelled when its last caller gave up")
		}
		// The next caller starts a fresh load rather than joining the
		// abandoned one, and nothing of the abandoned one is stored.
		fresh := newFlightLoader("new")
		close(fresh.release)
		if v, err := c.GetOrLoad(t.Context(), "k", fresh.load); v != "new" || err != nil {
			t.Fatalf("GetOrLoad after abandonment = %q, %v, want %q, <nil>", v, err, "new")
		}
	})
}

func TestGetOrLoadDoneContextReturnsAtOnce(t *testing.T) {
	c := cache.New[string, string](16, time.Minute)
	defer c.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	l := newFlightLoader("v")
	if _, err := c.GetOrLoad(ctx, "k", l.load); !errors.Is(err, context.Canceled) {
		t.Fatalf("GetOrLoad(done ctx) error = %v, want %v", err, context.Canceled)
	}
	if got := l.calls.Load(); got != 0 {
		t.Errorf("load calls = %d, want 0", got)
	}
	// A hit is served whatever the context.
	c.Set("k", "v")
	if v, err := c.GetOrLoad(ctx, "k", l.load); v != "v" || err != nil {
		t.Errorf("GetOrLoad(done ctx) of a fresh key = %q, %v, want %q, <nil>", v, err, "v")
	}
}

func TestGetOrLoadErrorsAreNotCached(t *testing.T) {
	errBackend := errors.New("backend down")
	c := cache.New[string, string](16, time.Minute)
	defer c.Close()
	calls := 0
	load := func(context.Context) (string, error) {
		calls++
		if calls == 1 {
			return "partial", errBackend
		}
		return "v", nil
	}
	if v, err := c.GetOrLoad(t.Context(), "k", load); v != "" || !errors.Is(err, errBackend) {
		t.Fatalf("first GetOrLoad = %q, %v, want %q, %v", v, err, "", errBackend)
	}
	if _, ok := c.Get("k"); ok {
		t.Fatal("Get after a failed load: ok = true, want false")
	}
	if v, err := c.GetOrLoad(t.Context(), "k", load); v != "v" || err != nil {
		t.Fatalf("second GetOrLoad = %q, %v, want %q, <nil>", v, err, "v")
	}
	if calls != 2 {
		t.Errorf("load calls = %d, want 2", calls)
	}
	want := cache.Stats{Misses: 3, Loads: 2, LoadErrors: 1} // the Get is a miss too
	if got := c.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestGetOrLoadStaleWhileRevalidate(t *testing.T) {
	const ttl, window = 10 * time.Second, 5 * time.Second
	synctest.Test(t, func(t *testing.T) {
		clk := clocktest.New(t0)
		c := cache.New[string, string](16, ttl, cache.WithClock(clk), cache.WithStaleWhileRevalidate(window))
		defer c.Close()
		c.Set("k", "v1")

		clk.Advance(ttl) // expired, within the window
		refresh := newFlightLoader("v2")
		for i := range 3 {
			if v, err := c.GetOrLoad(t.Context(), "k", refresh.load); v != "v1" || err != nil {
				t.Fatalf("stale call %d: GetOrLoad = %q, %v, want %q, <nil>", i, v, err, "v1")
			}
		}
		synctest.Wait()
		if got := refresh.calls.Load(); got != 1 {
			t.Fatalf("refreshes after 3 stale serves = %d, want 1", got)
		}
		if _, ok := c.Get("k"); ok {
			t.Fatal("Get of a stale entry: ok = true, want false")
		}
		close(refresh.release)
		synctest.Wait() // the refresh has stored v2
		unused := newFlightLoader("unused")
		if v, err := c.GetOrLoad(t.Context(), "k", unused.load); v != "v2" || err != nil {
			t.Fatalf("GetOrLoad after the refresh = %q, %v, want %q, <nil>", v, err, "v2")
		}

		clk.Advance(ttl + window) // past the window: a plain miss
		miss := newFlightLoader("v3")
		close(miss.release)
		if v, err := c.GetOrLoad(t.Context(), "k", miss.load); v != "v3" || err != nil {
			t.Fatalf("GetOrLoad past the window = %q, %v, want %q, <nil>", v, err, "v3")
		}
		if got := unused.calls.Load(); got != 0 {
			t.Errorf("load calls on a hit = %d, want 0", got)
		}
		want := cache.Stats{Hits: 1, Misses: 2, StaleServes: 3, Loads: 2}
		if got := c.Stats(); got != want {
			t.Errorf("Stats() = %+v, want %+v", got, want)
		}
	})
}

func TestStaleWhileRevalidateRefreshesAreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clocktest.New(t0)
		c := cache.New[string, string](16, time.Second, cache.WithClock(clk),
			cache.WithStaleWhileRevalidate(time.Minute), cache.WithMaxRefreshes(1))
		c.Set("a", "a1")
		c.Set("b", "b1")
		clk.Advance(time.Second)
		l := newFlightLoader("x")
		for _, key := range []string{"a", "b", "b"} {
			if v, err := c.GetOrLoad(t.Context(), key, l.load); v != key+"1" || err != nil {
				t.Fatalf("GetOrLoad(%q) = %q, %v, want %q, <nil>", key, v, err, key+"1")
			}
		}
		synctest.Wait()
		if got := l.calls.Load(); got != 1 {
			t.Errorf("refreshes running with WithMaxRefreshes(1) = %d, want 1", got)
		}
		// Close cancels the refresh nobody waits for and waits for it.
		c.Close()
		if !l.canceled.Load() {
			t.Error("Close did not cancel the running refresh")
		}
		// A closed cache still serves stale entries but starts no refresh.
		if v, err := c.GetOrLoad(t.Context(), "b", l.load); v != "b1" || err != nil {
			t.Errorf("GetOrLoad after Close = %q, %v, want %q, <nil>", v, err, "b1")
		}
		if got := l.calls.Load(); got != 1 {
			t.Errorf("loads after Close = %d, want 1", got)
		}
	})
}

func TestGetOrLoadStaleIfError(t *testing.T) {
	const ttl, window = 10 * time.Second, 30 * time.Second
	errBackend := errors.New("backend down")
	failing := func(context.Context) (string, error) { return "", errBackend }
	tests := []struct {
		name      string
		opts      []cache.Option
		advance   time.Duration
		wantValue string
		wantErr   error
		wantStats cache.Stats
	}{
		{"within the window", []cache.Option{cache.WithStaleIfError(window)}, ttl + window - 1,
			"v1", nil, cache.Stats{StaleServes: 1, Loads: 1, LoadErrors: 1}},
		{"past the window", []cache.Option{cache.WithStaleIfError(window)}, ttl + window,
			"", errBackend, cache.Stats{Misses: 1, Loads: 1, LoadErrors: 1}},
		{"off", nil, ttl,
			"", errBackend, cache.Stats{Misses: 1, Loads: 1, LoadErrors: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktest.New(t0)
			c := cache.New[string, string](16, ttl, append(tt.opts, cache.WithClock(clk))...)
			defer c.Close()
			c.Set("k", "v1")
			clk.Advance(tt.advance)
			v, err := c.GetOrLoad(t.Context(), "k", failing)
			if v != tt.wantValue || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("GetOrLoad = %q, %v, want %q, %v", v, err, tt.wantValue, tt.wantErr)
			}
			if got := c.Stats(); got != tt.wantStats {
				t.Errorf("Stats() = %+v, want %+v", got, tt.wantStats)
			}
			// The failure is not cached: the next call loads again.
			ok := func(context.Context) (string, error) { return "v2", nil }
			if v, err := c.GetOrLoad(t.Context(), "k", ok); v != "v2" || err != nil {
				t.Errorf("GetOrLoad after the failure = %q, %v, want %q, <nil>", v, err, "v2")
			}
		})
	}
}

func TestGetOrLoadStaleIfErrorServesAllWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clocktest.New(t0)
		c := cache.New[string, string](16, time.Second, cache.WithClock(clk), cache.WithStaleIfError(time.Minute))
		defer c.Close()
		c.Set("k", "v1")
		clk.Advance(time.Second)
		l := newFlightLoader("")
		l.err = errors.New("backend down")
		results := []<-chan flightResult{goLoad(t.Context(), c, "k", l.load), goLoad(t.Context(), c, "k", l.load)}
		synctest.Wait()
		close(l.release)
		for i, ch := range results {
			if r := <-ch; r.value != "v1" || r.err != nil {
				t.Errorf("caller %d: GetOrLoad = %q, %v, want %q, <nil>", i, r.value, r.err, "v1")
			}
		}
		want := cache.Stats{StaleServes: 2, Loads: 1, LoadErrors: 1}
		if got := c.Stats(); got != want {
			t.Errorf("Stats() = %+v, want %+v", got, want)
		}
	})
}

func TestGetOrLoadPanicReachesEveryWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := cache.New[string, string](16, time.Minute)
		defer c.Close()
		release := make(chan struct{})
		load := func(context.Context) (string, error) {
			<-release
			panic("boom")
		}
		recovered := make(chan any, 2)
		for range 2 {
			go func() {
				defer func() { recovered <- recover() }()
				c.GetOrLoad(t.Context(), "k", load)
			}()
		}
		synctest.Wait()
		close(release)
		for range 2 {
			if r := <-recovered; r != "boom" {
				t.Errorf("recovered %#v, want %q", r, "boom")
			}
		}
		if got := c.Stats().LoadErrors; got != 1 {
			t.Errorf("Stats().LoadErrors = %d, want 1", got)
		}
	})
}

func TestGetOrLoadLoadCallingGoexit(t *testing.T) {
	c := cache.New[string, string](16, time.Minute)
	defer c.Close()
	_, err := c.GetOrLoad(t.Context(), "k", func(context.Context) (string, error) {
		runtime.Goexit()
		return "", nil
	})
	if err == nil {
		t.Fatal("GetOrLoad with a load that called runtime.Goexit: error = <nil>, want an error")
	}
}

func TestRemoveAndSetSupersedeLoadInFlight(t *testing.T) {
	for _, tt := range []struct {
		name      string
		change    func(*cache.Cache[string, string])
		wantValue string
		wantOK    bool
	}{
		{"Remove", func(c *cache.Cache[string, string]) { c.Remove("k") }, "", false},
		{"Set", func(c *cache.Cache[string, string]) { c.Set("k", "set") }, "set", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := cache.New[string, string](16, time.Minute)
				defer c.Close()
				l := newFlightLoader("loaded")
				waiter := goLoad(t.Context(), c, "k", l.load)
				synctest.Wait()
				tt.change(c)
				close(l.release)
				if r := <-waiter; r.value != "loaded" || r.err != nil {
					t.Fatalf("waiting GetOrLoad = %q, %v, want %q, <nil>", r.value, r.err, "loaded")
				}
				if v, ok := c.Get("k"); v != tt.wantValue || ok != tt.wantOK {
					t.Errorf("Get after %s during the load = %q, %v, want %q, %v", tt.name, v, ok, tt.wantValue, tt.wantOK)
				}
			})
		})
	}
}

func TestClosedCacheLoadsInCaller(t *testing.T) {
	c := cache.New[string, string](16, time.Minute)
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v, want <nil>", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close() = %v, want <nil>", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	v, err := c.GetOrLoad(ctx, "k", func(lctx context.Context) (string, error) {
		if lctx != ctx {
			t.Error("load on a closed cache got another context than its caller's, want the caller's")
		}
		return "v", nil
	})
	if v != "v" || err != nil {
		t.Fatalf("GetOrLoad on a closed cache = %q, %v, want %q, <nil>", v, err, "v")
	}
	if got, ok := c.Get("k"); got != "v" || !ok {
		t.Errorf("Get after a load on a closed cache = %q, %v, want %q, true", got, ok, "v")
	}
}

type flightCtxKey struct{}

func TestLoadContextKeepsValuesDropsCancellation(t *testing.T) {
	c := cache.New[string, string](16, time.Minute)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.WithValue(t.Context(), flightCtxKey{}, "trace-1"), time.Hour)
	defer cancel()
	_, err := c.GetOrLoad(ctx, "k", func(lctx context.Context) (string, error) {
		if got := lctx.Value(flightCtxKey{}); got != "trace-1" {
			t.Errorf("load ctx value = %v, want %q", got, "trace-1")
		}
		if _, ok := lctx.Deadline(); ok {
			t.Error("load ctx has the caller's deadline, want none")
		}
		return "v", nil
	})
	if err != nil {
		t.Fatalf("GetOrLoad error = %v, want <nil>", err)
	}
}

// TestConcurrentUseKeepsBoundsAndFreshness hammers a cache with ten times
// its capacity in keys from several goroutines while time moves on. Each
// value is the time it was loaded, which, with the clock still within a
// phase, is the time it was stored: a value older than the ttl is an
// expired entry, which only a declared stale serve may return. Half the
// calls go to a few hot keys that stay resident long enough to expire.
func TestConcurrentUseKeepsBoundsAndFreshness(t *testing.T) {
	const (
		capacity = 128 // two shards by default
		keys     = 10 * capacity
		workers  = 8
		calls    = 200 // per worker and phase
		phases   = 12
		ttl      = 10 * time.Second
	)
	for _, tt := range []struct {
		name   string
		window time.Duration // stale-while-revalidate
	}{
		{"plain", 0},
		{"stale-while-revalidate", 4 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := clocktest.New(t0)
				c := cache.New[int, time.Time](capacity, ttl, cache.WithClock(clk), cache.WithStaleWhileRevalidate(tt.window))
				defer c.Close()
				load := func(context.Context) (time.Time, error) { return clk.Now(), nil }
				var staleSeen, total atomic.Uint64
				for phase := range phases {
					now := clk.Now()
					var wg sync.WaitGroup
					for w := range workers {
						wg.Go(func() {
							for i := range calls {
								total.Add(1)
								key := (w*7919 + i*31 + phase*613) % keys // cold: ten times the capacity
								if i%2 == 1 {
									key = i % 32 // hot: stays resident, so it expires
								}
								if i%4 == 0 {
									if v, ok := c.Get(key); ok && now.Sub(v) >= ttl {
										t.Errorf("Get(%d) at %v = value stored at %v, ok, want no expired hit", key, now, v)
									}
								} else {
									v, err := c.GetOrLoad(t.Context(), key, load)
									if err != nil {
										t.Errorf("GetOrLoad(%d) error = %v, want <nil>", key, err)
									}
									if age := now.Sub(v); age >= ttl {
										if age >= ttl+tt.window {
											t.Errorf("GetOrLoad(%d) at %v = value stored at %v, past ttl %v and window %v", key, now, v, ttl, tt.window)
										}
										staleSeen.Add(1)
									}
								}
								if n := c.Len(); n > capacity {
									t.Errorf("Len() = %d, want <= %d", n, capacity)
								}
							}
						})
					}
					wg.Wait()
					synctest.Wait() // background refreshes have stored their values
					clk.Advance(time.Duration(phase%5+1) * time.Second)
				}
				st := c.Stats()
				if st.StaleServes != staleSeen.Load() {
					t.Errorf("Stats().StaleServes = %d, want %d (the expired values returned)", st.StaleServes, staleSeen.Load())
				}
				if tt.window > 0 && st.StaleServes == 0 {
					t.Error("Stats().StaleServes = 0, want some: the test does not exercise stale serves")
				}
				if got := st.Hits + st.Misses + st.StaleServes; got != total.Load() {
					t.Errorf("Hits+Misses+StaleServes = %d, want %d calls", got, total.Load())
				}
				if st.Evictions == 0 {
					t.Error("Stats().Evictions = 0, want some: the test does not exercise eviction")
				}
			})
		})
	}
}
