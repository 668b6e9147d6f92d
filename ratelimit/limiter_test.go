package ratelimit_test

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/proxykit/proxy/internal/clocktest"
	"github.com/proxykit/proxy/ratelimit"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func TestNewPanicsOnInvalidConfig(t *testing.T) {
	tests := []struct {
		name  string
		rate  rate.Limit
		burst int
		opts  []ratelimit.Option
	}{
		{"negative rate", -1, 1, nil},
		{"negative infinite rate", rate.Limit(math.Inf(-1)), 1, nil},
		{"NaN rate", rate.Limit(math.NaN()), 1, nil},
		{"negative burst", 1, -1, nil},
		{"zero burst with a rate", 1, 0, nil},
		{"zero rate with a burst", 0, 1, nil},
		{"nil option", 1, 1, []ratelimit.Option{nil}},
		{"nil clock", 1, 1, []ratelimit.Option{ratelimit.WithClock(nil)}},
		{"zero max keys", 1, 1, []ratelimit.Option{ratelimit.WithMaxKeys(0)}},
		{"negative idle TTL", 1, 1, []ratelimit.Option{ratelimit.WithIdleTTL(-time.Second)}},
		{"negative max wait", 1, 1, []ratelimit.Option{ratelimit.WithMaxWait(-time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				msg := fmt.Sprint(recover())
				if !strings.HasPrefix(msg, "ratelimit: ") {
					t.Errorf("New(%v, %d) panicked with %q, want a \"ratelimit: \" panic", tt.rate, tt.burst, msg)
				}
			}()
			ratelimit.New(tt.rate, tt.burst, tt.opts...)
		})
	}
}

// limiterCall makes one of the Limiter's three decisions, so that a table
// can check that they agree.
func limiterCall(t *testing.T, lim *ratelimit.Limiter, call, key string) (bool, time.Duration) {
	t.Helper()
	switch call {
	case "Allow":
		return lim.Allow(key), 0
	case "Take":
		return lim.Take(key)
	case "Limit":
		ok, retryAfter, err := lim.Limit(t.Context(), key)
		if err != nil {
			t.Fatalf("Limit(ctx, %q) error = %v, want nil", key, err)
		}
		return ok, retryAfter
	}
	t.Fatalf("unknown call %q", call)
	return false, 0
}

func TestLimiterSteps(t *testing.T) {
	// 4 tokens per second (one every 250ms), bursts of 2. The times are
	// multiples of 125ms, which binary floating point holds exactly.
	clk := clocktest.New(t0)
	lim := ratelimit.New(4, 2, ratelimit.WithClock(clk))
	steps := []struct {
		advance        time.Duration
		call, key      string
		wantOK         bool
		wantRetryAfter time.Duration
	}{
		{0, "Allow", "alice", true, 0},
		{0, "Take", "alice", true, 0},
		{0, "Take", "alice", false, 250 * time.Millisecond},
		{0, "Allow", "alice", false, 0},
		{0, "Take", "bob", true, 0}, // keys do not share a bucket
		{125 * time.Millisecond, "Take", "alice", false, 125 * time.Millisecond},
		{0, "Limit", "alice", false, 125 * time.Millisecond}, // a rejection spends nothing
		{125 * time.Millisecond, "Limit", "alice", true, 0},
		{0, "Take", "alice", false, 250 * time.Millisecond},
		{10 * time.Second, "Allow", "alice", true, 0}, // refilled, but only up to the burst
		{0, "Take", "alice", true, 0},
		{0, "Take", "alice", false, 250 * time.Millisecond},
		{0, "Take", "bob", true, 0},
		{0, "Take", "bob", true, 0},
		{0, "Take", "bob", false, 250 * time.Millisecond},
	}
	for i, st := range steps {
		clk.Advance(st.advance)
		ok, retryAfter := limiterCall(t, lim, st.call, st.key)
		if ok != st.wantOK || retryAfter != st.wantRetryAfter {
			t.Fatalf("step %d: %s(%q) at +%v = %v, %v, want %v, %v",
				i, st.call, st.key, clk.Now().Sub(t0), ok, retryAfter, st.wantOK, st.wantRetryAfter)
		}
	}
}

func TestLimiterFixedDecisions(t *testing.T) {
	tests := []struct {
		name           string
		rate           rate.Limit
		burst          int
		wantOK         bool
		wantRetryAfter time.Duration
	}{
		{"rate.Inf admits everything", rate.Inf, 0, true, 0},
		{"+Inf is rate.Inf", rate.Limit(math.Inf(1)), 5, true, 0},
		{"zero rate and burst admit nothing", 0, 0, false, rate.InfDuration},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := ratelimit.New(tt.rate, tt.burst)
			for i := range 100 {
				key := "k" + strconv.Itoa(i%3)
				if got := lim.Allow(key); got != tt.wantOK {
					t.Fatalf("Allow(%q) = %v, want %v", key, got, tt.wantOK)
				}
				if ok, retryAfter := lim.Take(key); ok != tt.wantOK || retryAfter != tt.wantRetryAfter {
					t.Fatalf("Take(%q) = %v, %v, want %v, %v", key, ok, retryAfter, tt.wantOK, tt.wantRetryAfter)
				}
				ok, retryAfter, err := lim.Limit(t.Context(), key)
				if ok != tt.wantOK || retryAfter != tt.wantRetryAfter || err != nil {
					t.Fatalf("Limit(ctx, %q) = %v, %v, %v, want %v, %v, nil", key, ok, retryAfter, err, tt.wantOK, tt.wantRetryAfter)
				}
			}
			if got := lim.Len(); got != 0 {
				t.Errorf("Len() = %d, want 0", got)
			}
		})
	}
}

func TestLimiterWaitBeyondDurations(t *testing.T) {
	// One token every 31710 years: the wait does not fit in a Duration, and
	// the bucket is never idle long enough to be evicted.
	clk := clocktest.New(t0)
	lim := ratelimit.New(1e-12, 1, ratelimit.WithClock(clk), ratelimit.WithMaxKeys(10))
	if ok, retryAfter := lim.Take("alice"); !ok || retryAfter != 0 {
		t.Fatalf(`Take("alice") = %v, %v, want true, 0`, ok, retryAfter)
	}
	if ok, retryAfter := lim.Take("alice"); ok || retryAfter != rate.InfDuration {
		t.Fatalf(`Take("alice") again = %v, %v, want false, rate.InfDuration`, ok, retryAfter)
	}
	clk.Advance(100 * 365 * 24 * time.Hour)
	lim.Allow("bob") // sweeps nothing: alice's bucket is not idle yet
	if got := lim.Len(); got != 2 {
		t.Errorf("Len() = %d, want 2", got)
	}
}

// TestLimiterConcurrentAdmitsAtRate has 1000 goroutines try, at each step of
// a fake clock, to get a token at 100/s with bursts of 10. Over 10s a key
// can admit at most 10 + 10*100 = 1010 calls, and all of them unless
// floating-point rounding loses a token here and there. One goroutine in ten
// brings a new key at each step, so that shards are swept while the others
// use their buckets.
func TestLimiterConcurrentAdmitsAtRate(t *testing.T) {
	const (
		goroutines = 1000
		step       = 100 * time.Millisecond
		steps      = 100 // 10s
		maxAdmits  = 10 + 100*10
		minAdmits  = maxAdmits * 99 / 100
	)
	tests := []struct {
		name string
		keys int
		opts []ratelimit.Option
	}{
		{"one key", 1, nil},
		// Every bucket is idle and full at each step, so each sweep evicts
		// the buckets that the goroutines are about to use.
		{"8 keys evicted whenever full", 8, []ratelimit.Option{ratelimit.WithIdleTTL(0), ratelimit.WithMaxKeys(1000)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktest.New(t0)
			lim := ratelimit.New(100, 10, append(tt.opts, ratelimit.WithClock(clk))...)
			calls := []string{"Allow", "Take", "Limit"}
			admitted := make([]atomic.Int64, tt.keys)
			gates := make([]chan struct{}, steps+1) // closed one by one to start each step
			for i := range gates {
				gates[i] = make(chan struct{})
			}
			var done sync.WaitGroup // one Done per goroutine per step
			var exited sync.WaitGroup
			for g := range goroutines {
				call := calls[g%len(calls)]
				exited.Go(func() {
					for i, gate := range gates {
						<-gate
						if g%10 == 9 {
							limiterCall(t, lim, call, fmt.Sprintf("new-%d-%d", i, g))
						} else if ok, _ := limiterCall(t, lim, call, "key"+strconv.Itoa(g%tt.keys)); ok {
							admitted[g%tt.keys].Add(1)
						}
						done.Done()
					}
				})
			}
			for i, gate := range gates {
				if i > 0 {
					clk.Advance(step)
				}
				done.Add(goroutines)
				close(gate)
				done.Wait()
			}
			exited.Wait()
			for k := range admitted {
				if got := admitted[k].Load(); got < minAdmits || got > maxAdmits {
					t.Errorf("key%d: %d calls admitted over 10s, want %d..%d", k, got, minAdmits, maxAdmits)
				}
			}
		})
	}
}

func TestLimiterEvictsIdleKeys(t *testing.T) {
	const keys = 100_000
	clk := clocktest.New(t0)
	// A bound well above the number of keys, so that only idleness evicts.
	lim := ratelimit.New(1, 5, ratelimit.WithClock(clk), ratelimit.WithMaxKeys(1<<20))
	for i := range keys {
		if key := "user" + strconv.Itoa(i); !lim.Allow(key) {
			t.Fatalf("Allow(%q) = false, want true", key)
		}
	}
	if got := lim.Len(); got != keys {
		t.Fatalf("Len() after %d keys = %d, want %d", keys, got, keys)
	}

	// Shards are swept at most once a second (1/16 of the idle TTL, at most
	// a second), by calls that add keys.
	clk.Advance(ratelimit.DefaultIdleTTL - time.Second)
	for i := range 100 {
		lim.Allow("early" + strconv.Itoa(i))
	}
	if got, want := lim.Len(), keys+100; got != want {
		t.Fatalf("Len() a second before the idle TTL = %d, want %d (nothing evicted yet)", got, want)
	}

	clk.Advance(time.Second)
	for i := range 100 {
		lim.Allow("late" + strconv.Itoa(i))
	}
	if got, want := lim.Len(), 200; got != want {
		t.Fatalf("Len() once the first %d keys are idle = %d, want %d", keys, got, want)
	}
}

func TestLimiterBoundsKeys(t *testing.T) {
	const maxKeys = 5000
	clk := clocktest.New(t0)
	lim := ratelimit.New(1, 1, ratelimit.WithClock(clk), ratelimit.WithMaxKeys(maxKeys))
	for i := range 4 * maxKeys {
		lim.Allow("user" + strconv.Itoa(i))
		if i%500 == 0 {
			if got := lim.Len(); got > maxKeys {
				t.Fatalf("Len() after %d active keys = %d, want at most %d", i+1, got, maxKeys)
			}
		}
	}
	if got := lim.Len(); got > maxKeys {
		t.Fatalf("Len() after %d active keys = %d, want at most %d", 4*maxKeys, got, maxKeys)
	}
}

func TestLimiterEvictsLeastRecentlyUsed(t *testing.T) {
	clk := clocktest.New(t0)
	// One token an hour, so that a spent bucket stays empty: a key that
	// gets a token again has had its bucket evicted.
	lim := ratelimit.New(rate.Every(time.Hour), 1, ratelimit.WithClock(clk), ratelimit.WithMaxKeys(2))
	steps := []struct {
		key  string
		want bool
	}{
		{"a", true},
		{"b", true},
		{"a", false}, // a is now the most recently used
		{"c", true},  // the bound is reached: b, least recently used, goes
		{"a", false}, // a kept its empty bucket
		{"b", true},  // b got a new bucket; c, least recently used, went
		{"c", true},  // c got a new bucket; a went
		{"b", false},
	}
	for i, st := range steps {
		if got := lim.Allow(st.key); got != st.want {
			t.Fatalf("step %d: Allow(%q) = %v, want %v", i, st.key, got, st.want)
		}
		if got := lim.Len(); got > 2 {
			t.Fatalf("step %d: Len() = %d, want at most 2", i, got)
		}
	}
}

// TestLimiterEvictionIsInvisible checks that a bucket is evicted only once
// it is full again, however short the idle TTL, so that an evicted key
// behaves exactly as if it had kept its bucket.
func TestLimiterEvictionIsInvisible(t *testing.T) {
	tests := []struct {
		name        string
		after       time.Duration // from alice's last call to bob's first
		wantEvicted bool
	}{
		{"not yet full", 2999 * time.Millisecond, false},
		{"full again", 3 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktest.New(t0)
			// 1 token/s, bursts of 3: an empty bucket is full again after
			// 3s. A bound under 2048 keys makes one shard, which every
			// insertion sweeps (at most once per 1/16 of the idle time).
			evicting := ratelimit.New(1, 3, ratelimit.WithClock(clk), ratelimit.WithIdleTTL(0), ratelimit.WithMaxKeys(100))
			keeping := ratelimit.New(1, 3, ratelimit.WithClock(clk), ratelimit.WithIdleTTL(time.Hour))
			both := func(key string) bool {
				t.Helper()
				ok, retryAfter := evicting.Take(key)
				okKept, retryAfterKept := keeping.Take(key)
				if ok != okKept || retryAfter != retryAfterKept {
					t.Fatalf("Take(%q) at +%v = %v, %v with eviction, want %v, %v as without",
						key, clk.Now().Sub(t0), ok, retryAfter, okKept, retryAfterKept)
				}
				return ok
			}
			for i := range 4 {
				if got, want := both("alice"), i < 3; got != want {
					t.Fatalf("Take(\"alice\") #%d = %v, want %v", i+1, got, want)
				}
			}

			clk.Advance(tt.after)
			evicting.Allow("bob") // a new key sweeps the idle buckets
			wantLen := 2
			if tt.wantEvicted {
				wantLen = 1
			}
			if got := evicting.Len(); got != wantLen {
				t.Fatalf("Len() %v after alice's last call = %d, want %d", tt.after, got, wantLen)
			}
			for range 4 {
				both("alice")
			}
		})
	}
}

// TestLimiterEvictionWaitsForReservations checks that the idle time before
// eviction covers the tokens that waiting calls borrowed ahead.
func TestLimiterEvictionWaitsForReservations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 1 token/s, burst 1, waits of up to 2s: two waiters borrow two
		// tokens, so the bucket is full only 3s after they reserved.
		lim := ratelimit.New(1, 1, ratelimit.WithIdleTTL(0), ratelimit.WithMaxWait(2*time.Second), ratelimit.WithMaxKeys(100))
		lim.Allow("alice")
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				if ok, retryAfter, err := lim.Limit(t.Context(), "alice"); !ok || err != nil {
					t.Errorf(`Limit(ctx, "alice") = %v, %v, %v, want true, 0, nil`, ok, retryAfter, err)
				}
			})
			synctest.Wait() // the first waiter reserves before the second
		}
		wg.Wait()

		time.Sleep(500 * time.Millisecond) // 2.5s after the reservations: 0.5 tokens
		lim.Allow("bob")                   // sweeps the idle buckets
		if got := lim.Len(); got != 2 {
			t.Fatalf("Len() 2.5s after alice's reservations = %d, want 2", got)
		}
		if lim.Allow("alice") {
			t.Fatal(`Allow("alice") with half a token = true, want false`)
		}
	})
}

func TestLimiterLimitWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := ratelimit.New(10, 1, ratelimit.WithMaxWait(time.Second))
		lim.Allow("alice")
		start := time.Now()
		ok, retryAfter, err := lim.Limit(t.Context(), "alice")
		if !ok || retryAfter != 0 || err != nil {
			t.Fatalf(`Limit(ctx, "alice") = %v, %v, %v, want true, 0, nil`, ok, retryAfter, err)
		}
		if got, want := time.Since(start), 100*time.Millisecond; got != want {
			t.Errorf(`Limit(ctx, "alice") waited %v, want %v`, got, want)
		}
		if ok, retryAfter := lim.Take("alice"); ok || retryAfter != 100*time.Millisecond {
			t.Errorf(`Take("alice") after the wait = %v, %v, want false, 100ms`, ok, retryAfter)
		}
	})
}

func TestLimiterLimitRefusesAtOnce(t *testing.T) {
	tests := []struct {
		name    string
		maxWait time.Duration
		timeout time.Duration // of ctx; 0 means no deadline
	}{
		{"wait beyond the bound", 50 * time.Millisecond, 0},
		{"no waiting by default", 0, 0},
		{"wait beyond the deadline", time.Second, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lim := ratelimit.New(10, 1, ratelimit.WithMaxWait(tt.maxWait))
				lim.Allow("alice")
				ctx := t.Context()
				if tt.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.timeout)
					defer cancel()
				}
				start := time.Now()
				ok, retryAfter, err := lim.Limit(ctx, "alice")
				if ok || retryAfter != 100*time.Millisecond || err != nil {
					t.Fatalf(`Limit(ctx, "alice") = %v, %v, %v, want false, 100ms, nil`, ok, retryAfter, err)
				}
				if waited := time.Since(start); waited != 0 {
					t.Errorf(`Limit(ctx, "alice") waited %v, want no wait`, waited)
				}
				// Nothing was reserved: the next token is still 100ms away.
				if ok, retryAfter := lim.Take("alice"); ok || retryAfter != 100*time.Millisecond {
					t.Errorf(`Take("alice") after the refusal = %v, %v, want false, 100ms`, ok, retryAfter)
				}
			})
		})
	}
}

func TestLimiterLimitCanceled(t *testing.T) {
	t.Run("during the wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			lim := ratelimit.New(1, 1, ratelimit.WithMaxWait(time.Minute))
			lim.Allow("alice")
			ctx, cancel := context.WithCancel(t.Context())
			type result struct {
				ok         bool
				retryAfter time.Duration
				err        error
			}
			results := make(chan result)
			go func() {
				ok, retryAfter, err := lim.Limit(ctx, "alice")
				results <- result{ok, retryAfter, err}
			}()
			synctest.Wait() // Limit is waiting for its token
			start := time.Now()
			cancel()
			got := <-results
			if got.ok || got.retryAfter != 0 || got.err != context.Canceled {
				t.Fatalf(`Limit(ctx, "alice") cancelled = %v, %v, %v, want false, 0, %v`, got.ok, got.retryAfter, got.err, context.Canceled)
			}
			if waited := time.Since(start); waited != 0 {
				t.Errorf(`Limit(ctx, "alice") returned %v after cancel, want at once`, waited)
			}
			// The reservation was cancelled: the next token is 1s away, not 2s.
			if ok, retryAfter := lim.Take("alice"); ok || retryAfter != time.Second {
				t.Errorf(`Take("alice") after the cancelled wait = %v, %v, want false, 1s`, ok, retryAfter)
			}
		})
	})
	t.Run("before the call", func(t *testing.T) {
		lim := ratelimit.New(1, 1, ratelimit.WithClock(clocktest.New(t0)))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if ok, retryAfter, err := lim.Limit(ctx, "alice"); ok || retryAfter != 0 || err != context.Canceled {
			t.Fatalf(`Limit(cancelled ctx, "alice") = %v, %v, %v, want false, 0, %v`, ok, retryAfter, err, context.Canceled)
		}
		if !lim.Allow("alice") {
			t.Error(`Allow("alice") after a cancelled Limit = false, want true (no token spent)`)
		}
	})
}
