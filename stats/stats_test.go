package stats_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/internal/clocktest"
	"github.com/proxykit/proxy/stats"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// call records one finished call of service on rec, ending at end after
// taking d.
func call(rec *stats.Recorder, service string, end time.Time, d time.Duration, out proxy.Outcome, cached bool) {
	rec.Begin(service)
	rec.End(proxy.Observation{Service: service, Outcome: out, Start: end.Add(-d), Duration: d, Cached: cached})
}

func TestCountsMatchBackend(t *testing.T) {
	clk := clocktest.New(t0)
	rec := stats.New(stats.WithClock(clk))
	results := []struct {
		err    error
		cached bool
		want   proxy.Outcome
	}{
		{nil, false, proxy.OutcomeOK},
		{nil, true, proxy.OutcomeOK},
		{errors.New("card declined"), false, proxy.OutcomeError},
		{&proxy.RateLimitError{Key: "alice"}, false, proxy.OutcomeRateLimited},
		{fmt.Errorf("%w: open", proxy.ErrCircuitOpen), false, proxy.OutcomeCircuitOpen},
		{nil, true, proxy.OutcomeOK},
	}
	wantOutcomes := map[string]map[string]uint64{}
	wantHits, wantMisses := map[string]uint64{}, map[string]uint64{}
	n := 0
	backend := proxy.ServiceFunc(func(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
		r := results[n%len(results)]
		n++
		clk.Advance(time.Duration(n) * time.Millisecond)
		if wantOutcomes[req.Service] == nil {
			wantOutcomes[req.Service] = map[string]uint64{}
			for _, o := range proxy.Outcomes() {
				wantOutcomes[req.Service][o.String()] = 0
			}
		}
		wantOutcomes[req.Service][r.want.String()]++
		if r.err != nil {
			return nil, r.err
		}
		if r.cached {
			wantHits[req.Service]++
		} else {
			wantMisses[req.Service]++
		}
		return &proxy.Response{RequestID: req.ID, Cached: r.cached}, nil
	})
	svc := proxy.Chain(backend, proxy.Instrumented(rec, proxy.WithInstrumentedClock(clk)))
	for i := range 50 {
		_, _ = svc.Process(t.Context(), &proxy.Request{ID: "r", UserID: "u", Service: []string{"payment", "user"}[i%2]})
	}

	snap := rec.Snapshot()
	if got := len(snap.Services); got != 2 {
		t.Fatalf("Snapshot() has %d services, want 2", got)
	}
	var total uint64
	for _, name := range []string{"payment", "user"} {
		st, ok := snap.Service(name)
		if !ok {
			t.Fatalf("Snapshot().Service(%q) reports false", name)
		}
		if !mapsEqual(st.Outcomes, wantOutcomes[name]) {
			t.Errorf("%s: Outcomes = %v, want %v", name, st.Outcomes, wantOutcomes[name])
		}
		if st.Requests != 25 || st.Latency.Count != 25 {
			t.Errorf("%s: Requests = %d, Latency.Count = %d, want 25 and 25", name, st.Requests, st.Latency.Count)
		}
		if st.CacheHits != wantHits[name] || st.CacheMisses != wantMisses[name] {
			t.Errorf("%s: CacheHits, CacheMisses = %d, %d, want %d, %d", name, st.CacheHits, st.CacheMisses, wantHits[name], wantMisses[name])
		}
		if st.InFlight != 0 {
			t.Errorf("%s: InFlight = %d, want 0", name, st.InFlight)
		}
		direct, ok := rec.Service(name)
		if !ok || !sameStats(direct, st) {
			t.Errorf("Service(%q) = %+v, %v, want %+v, true", name, direct, ok, st)
		}
		total += st.Requests
	}
	wantOK := wantOutcomes["payment"]["ok"] + wantOutcomes["user"]["ok"]
	if snap.Total.Requests != total || snap.Total.Latency.Count != total || snap.Total.Outcomes["ok"] != wantOK {
		t.Errorf("Total = %+v, want %d requests, %d of them ok", snap.Total, total, wantOK)
	}
	if _, ok := rec.Service("order"); ok {
		t.Errorf(`Service("order") reports true for a service never seen`)
	}
}

func mapsEqual(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

func sameStats(a, b stats.ServiceStats) bool {
	return mapsEqual(a.Outcomes, b.Outcomes) && a.Service == b.Service && a.Requests == b.Requests &&
		a.InFlight == b.InFlight && a.CacheHits == b.CacheHits && a.CacheMisses == b.CacheMisses &&
		a.Rate == b.Rate && a.Latency == b.Latency
}

// nearestRank returns the exact q-quantile of sorted: its ceil(q*n)-th
// smallest element.
func nearestRank(sorted []time.Duration, q float64) time.Duration {
	r := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(r, 1)-1]
}

func TestQuantilesWithinDocumentedError(t *testing.T) {
	uniform := make([]time.Duration, 1000)
	for i := range uniform {
		uniform[i] = time.Duration(i+1) * time.Millisecond
	}
	rng := rand.New(rand.NewPCG(1, 2))
	lognormal := make([]time.Duration, 5000)
	for i := range lognormal {
		// median about 20ms, long tail
		lognormal[i] = time.Duration(math.Exp(rng.NormFloat64()+math.Log(20e6))) + time.Microsecond
	}
	tiny := []time.Duration{3, 5, 5, 7, 9, 11, 15}
	tests := []struct {
		name    string
		samples []time.Duration
	}{
		{"uniform 1ms to 1s", uniform},
		{"lognormal", lognormal},
		{"under 16ns, exact", tiny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktest.New(t0)
			rec := stats.New(stats.WithClock(clk))
			end := t0.Add(time.Second)
			var sum time.Duration
			for _, d := range tt.samples {
				call(rec, "payment", end, d, proxy.OutcomeOK, false)
				sum += d
			}
			clk.Advance(2 * time.Second)
			st, _ := rec.Service("payment")
			sorted := slices.Sorted(slices.Values(tt.samples))
			for _, q := range []struct {
				q   float64
				got time.Duration
			}{{0.50, st.Latency.P50}, {0.90, st.Latency.P90}, {0.99, st.Latency.P99}} {
				want := nearestRank(sorted, q.q)
				if rel := math.Abs(float64(q.got-want)) / float64(want); rel > stats.QuantileError {
					t.Errorf("p%v = %v, want %v within %.3f%%: off by %.3f%%", q.q*100, q.got, want, 100*stats.QuantileError, 100*rel)
				}
			}
			if st.Latency.Count != uint64(len(sorted)) || st.Latency.Max != sorted[len(sorted)-1] ||
				st.Latency.Mean != sum/time.Duration(len(sorted)) {
				t.Errorf("Latency = %+v, want count %d, max %v, mean %v", st.Latency, len(sorted), sorted[len(sorted)-1], sum/time.Duration(len(sorted)))
			}
		})
	}
}

func TestVeryLongCallsAreCappedAtMax(t *testing.T) {
	clk := clocktest.New(t0)
	rec := stats.New(stats.WithClock(clk))
	clk.Advance(10 * time.Minute)
	call(rec, "batch", clk.Now(), 2*time.Minute, proxy.OutcomeOK, false)
	call(rec, "batch", clk.Now(), 3*time.Minute, proxy.OutcomeOK, false)
	st, _ := rec.Service("batch")
	if st.Latency.P99 != 3*time.Minute || st.Latency.Max != 3*time.Minute {
		t.Errorf("P99, Max = %v, %v, want 3m0s, 3m0s", st.Latency.P99, st.Latency.Max)
	}
}

func TestWindowSlides(t *testing.T) {
	clk := clocktest.New(t0)
	rec := stats.New(stats.WithClock(clk), stats.WithWindow(time.Minute)) // 12 slots of 5s
	type want struct {
		count uint64
		rate  float64
		p50   time.Duration
	}
	steps := []struct {
		name    string
		advance time.Duration
		calls   int
		took    time.Duration
		want    want
	}{
		{"nothing yet", 0, 0, 0, want{0, 0, 0}},
		{"60 fast calls in the first 10s", 10 * time.Second, 60, 10 * time.Microsecond, want{60, 6, 10 * time.Microsecond}},
		{"30 slow calls at 30s", 20 * time.Second, 30, 10 * time.Millisecond, want{90, 3, 10 * time.Microsecond}},
		{"the window still holds both at 59s", 29 * time.Second, 0, 0, want{90, 90.0 / 59, 10 * time.Microsecond}},
		{"at 65s the window starts at 10s and holds both", 6 * time.Second, 0, 0, want{90, 90.0 / 55, 10 * time.Microsecond}},
		// At 70s the window starts at 15s: the slot [10s, 15s) is gone.
		{"at 70s the first calls have left", 5 * time.Second, 0, 0, want{30, 30.0 / 55, 10 * time.Millisecond}},
		{"at 2m everything has left", 50 * time.Second, 0, 0, want{0, 0, 0}},
	}
	for _, s := range steps {
		clk.Advance(s.advance)
		for range s.calls {
			call(rec, "payment", clk.Now(), s.took, proxy.OutcomeOK, false)
		}
		st, _ := rec.Service("payment")
		// Durations under 16ns are exact; 10µs and 10ms are within the
		// documented error.
		if st.Latency.Count != s.want.count || math.Abs(st.Rate-s.want.rate) > 1e-9 ||
			math.Abs(float64(st.Latency.P50-s.want.p50)) > stats.QuantileError*float64(s.want.p50) {
			t.Errorf("%s: Latency.Count, Rate, P50 = %d, %v, %v, want %d, %v, %v",
				s.name, st.Latency.Count, st.Rate, st.Latency.P50, s.want.count, s.want.rate, s.want.p50)
		}
		if s.calls > 0 && st.Requests == 0 {
			t.Errorf("%s: Requests = 0 after calls", s.name)
		}
	}
	if st, _ := rec.Service("payment"); st.Requests != 90 {
		t.Errorf("Requests after the window has emptied = %d, want 90: the counts cover the Recorder's life", st.Requests)
	}
	if snap := rec.Snapshot(); snap.Window != time.Minute {
		t.Errorf("Snapshot().Window = %v, want 1m0s", snap.Window)
	}
}

func TestCallsOutsideTheWindow(t *testing.T) {
	clk := clocktest.New(t0)
	rec := stats.New(stats.WithClock(clk))
	clk.Advance(5 * time.Minute)
	call(rec, "payment", clk.Now(), time.Millisecond, proxy.OutcomeOK, false)
	// A call that ended 2 minutes ago, in the slot now kept for the present:
	// it counts, but not in the window.
	call(rec, "payment", clk.Now().Add(-2*time.Minute), time.Millisecond, proxy.OutcomeOK, false)
	// A call that ended before the window, in a slot that is empty.
	call(rec, "payment", clk.Now().Add(-90*time.Second-time.Second), time.Millisecond, proxy.OutcomeOK, false)
	// A call with no start time is placed at the Recorder's now.
	rec.Begin("payment")
	rec.End(proxy.Observation{Service: "payment", Duration: time.Millisecond})

	st, _ := rec.Service("payment")
	if st.Requests != 4 || st.Latency.Count != 2 {
		t.Errorf("Requests, Latency.Count = %d, %d, want 4, 2", st.Requests, st.Latency.Count)
	}
}

// TestCallsEndingOutOfOrder ends calls of several slots in a mixed order,
// from several goroutines at once, and checks that each call in the window
// is counted once, with its duration, whichever goroutine ended it.
func TestCallsEndingOutOfOrder(t *testing.T) {
	clk := clocktest.New(t0)
	rec := stats.New(stats.WithClock(clk), stats.WithWindow(time.Minute)) // 12 slots of 5s
	clk.Advance(time.Minute)
	// Slot offsets from now, in seconds: the order the calls end in.
	offsets := []int{0, -10, -5, 0, -30, -10, -55, 0, -5, -80, -30, 0}
	const goroutines = 8
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i, off := range offsets {
				d := time.Duration(g*len(offsets)+i+1) * time.Microsecond
				call(rec, "payment", clk.Now().Add(time.Duration(off)*time.Second), d, proxy.OutcomeOK, false)
			}
		})
	}
	wg.Wait()
	st, _ := rec.Service("payment")
	// -80s is before the window, which starts at -55s.
	inWindow := goroutines * (len(offsets) - 1)
	maxD := time.Duration(goroutines*len(offsets)) * time.Microsecond
	if st.Requests != uint64(goroutines*len(offsets)) || st.Latency.Count != uint64(inWindow) || st.Latency.Max != maxD {
		t.Errorf("Requests, Latency.Count, Latency.Max = %d, %d, %v, want %d, %d, %v",
			st.Requests, st.Latency.Count, st.Latency.Max, goroutines*len(offsets), inWindow, maxD)
	}
}

func TestMaxServicesBoundsMemory(t *testing.T) {
	rec := stats.New(stats.WithMaxServices(2))
	for _, s := range []string{"a", "b", "c", "d", "a"} {
		rec.Begin(s)
		rec.End(proxy.Observation{Service: s})
	}
	snap := rec.Snapshot()
	var names []string
	for _, st := range snap.Services {
		names = append(names, st.Service)
	}
	if want := []string{stats.OtherService, "a", "b"}; !slices.Equal(names, want) {
		t.Errorf("services = %q, want %q", names, want)
	}
	if st, ok := rec.Service(stats.OtherService); !ok || st.Requests != 2 {
		t.Errorf("Service(%q) = %d requests, %v, want 2, true", stats.OtherService, st.Requests, ok)
	}
	if st, ok := snap.Service("a"); !ok || st.Requests != 2 {
		t.Errorf(`Service("a") = %d requests, %v, want 2, true`, st.Requests, ok)
	}
}

func TestUnknownOutcomeIsCountedAsError(t *testing.T) {
	rec := stats.New()
	rec.Begin("order")
	rec.End(proxy.Observation{Service: "order", Outcome: proxy.Outcome(200)})
	if st, _ := rec.Service("order"); st.Outcomes["error"] != 1 || st.Requests != 1 {
		t.Errorf("after End(Outcome(200)): Outcomes = %v, want error: 1", st.Outcomes)
	}
}

func TestSnapshotJSON(t *testing.T) {
	clk := clocktest.New(t0)
	rec := stats.New(stats.WithClock(clk))
	clk.Advance(time.Second)
	call(rec, "payment", clk.Now(), 8*time.Nanosecond, proxy.OutcomeOK, true)
	b, err := json.Marshal(rec.Snapshot())
	if err != nil {
		t.Fatalf("Marshal(Snapshot()) error = %v", err)
	}
	var got struct {
		Window   int64 `json:"window_ns"`
		Services []struct {
			Service   string            `json:"service"`
			Requests  int               `json:"requests"`
			Outcomes  map[string]uint64 `json:"outcomes"`
			CacheHits int               `json:"cache_hits"`
			Rate      float64           `json:"rate"`
			Latency   map[string]int64  `json:"latency"`
		} `json:"services"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("Unmarshal(%s) error = %v", b, err)
	}
	if len(got.Services) != 1 {
		t.Fatalf("JSON %s has %d services, want 1", b, len(got.Services))
	}
	s := got.Services[0]
	wantLat := map[string]int64{"count": 1, "mean_ns": 8, "p50_ns": 8, "p90_ns": 8, "p99_ns": 8, "max_ns": 8}
	if s.Service != "payment" || s.Requests != 1 || s.CacheHits != 1 || s.Rate != 1 || len(s.Outcomes) != len(proxy.Outcomes()) ||
		fmt.Sprint(s.Latency) != fmt.Sprint(wantLat) || got.Window != int64(time.Minute) {
		t.Errorf("JSON = %s, want payment with 1 request, 1 hit, rate 1, every outcome, latency %v", b, wantLat)
	}
}

func TestConcurrentUse(t *testing.T) {
	rec := stats.New()
	svc := proxy.Chain(proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		return &proxy.Response{}, nil
	}), proxy.Instrumented(rec))
	const goroutines, calls = 8, 200
	services := []string{"payment", "user", "order"}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				_, _ = svc.Process(t.Context(), &proxy.Request{ID: "r", UserID: "u", Service: services[(g+i)%len(services)]})
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			snap := rec.Snapshot()
			if snap.Total.InFlight < 0 || snap.Total.InFlight > goroutines {
				t.Errorf("Snapshot().Total.InFlight = %d during the run, want 0 to %d", snap.Total.InFlight, goroutines)
			}
		}
	})
	wg.Wait()
	snap := rec.Snapshot()
	if snap.Total.Requests != goroutines*calls || snap.Total.InFlight != 0 || snap.Total.CacheMisses != goroutines*calls {
		t.Errorf("Total = %+v, want %d requests and misses, none in flight", snap.Total, goroutines*calls)
	}
}

func TestNewPanicsOnBadConfig(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"nil clock", func() { stats.WithClock(nil) }},
		{"short window", func() { stats.WithWindow(time.Millisecond) }},
		{"negative window", func() { stats.WithWindow(-time.Minute) }},
		{"zero services", func() { stats.WithMaxServices(0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); len(s) < 7 || s[:7] != "stats: " {
					t.Errorf("%s: recovered %v, want a panic starting with %q", tt.name, r, "stats: ")
				}
			}()
			tt.f()
		})
	}
}

var (
	benchResp    = &proxy.Response{RequestID: "req_1", Service: "payment"}
	benchReq     = &proxy.Request{ID: "req_1", UserID: "alice", Service: "payment"}
	benchBackend = proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		return benchResp, nil
	})
)

func BenchmarkInstrumented(b *testing.B) {
	svc := proxy.Chain(benchBackend, proxy.Instrumented(stats.New()))
	ctx := b.Context()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = svc.Process(ctx, benchReq)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = svc.Process(ctx, benchReq)
			}
		})
	})
}

func BenchmarkSnapshot(b *testing.B) {
	rec := stats.New()
	for _, s := range []string{"payment", "notification", "user", "order", "inventory"} {
		for i := range 1000 {
			call(rec, s, time.Now(), time.Duration(i)*time.Microsecond, proxy.OutcomeOK, false)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = rec.Snapshot()
	}
}
