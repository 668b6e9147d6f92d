package balance_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/proxykit/proxy/balance"
)

func TestNewPanicsOnBadConfig(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"no instances", func() { balance.New[string](nil, balance.NewRoundRobin()) }},
		{"nil picker", func() { balance.New(pool(2), nil) }},
		{"empty name", func() {
			balance.New([]balance.Instance[int]{{Name: "a"}, {Name: ""}}, balance.NewRoundRobin())
		}},
		{"repeated name", func() {
			balance.New([]balance.Instance[int]{{Name: "a"}, {Name: "a"}}, balance.NewRoundRobin())
		}},
		{"nil option", func() { balance.New(pool(2), balance.NewRoundRobin(), nil) }},
		{"nil clock", func() { balance.WithClock(nil) }},
		{"zero failure threshold", func() { balance.WithFailureThreshold(0) }},
		{"zero ejection time", func() { balance.WithEjectionTime(0) }},
		{"negative max ejection time", func() { balance.WithMaxEjectionTime(-time.Second) }},
		{"negative percent", func() { balance.WithMaxEjectionPercent(-1) }},
		{"percent over 100", func() { balance.WithMaxEjectionPercent(101) }},
		{"zero check interval", func() { balance.WithCheckInterval(0) }},
		{"zero check timeout", func() { balance.WithCheckTimeout(0) }},
		{"zero unhealthy threshold", func() { balance.WithUnhealthyThreshold(0) }},
		{"zero healthy threshold", func() { balance.WithHealthyThreshold(0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("no panic, want one")
				}
				if msg := fmt.Sprint(r); len(msg) < 9 || msg[:9] != "balance: " {
					t.Errorf("panic %q, want a message starting with \"balance: \"", msg)
				}
			}()
			tt.f()
		})
	}
}

func TestPickCountsCalls(t *testing.T) {
	b, _ := newClocked(t, 2)
	l1, err := b.Pick()
	require.NoError(t, err)
	l2, err := b.Pick()
	require.NoError(t, err)
	l3, err := b.Pick()
	require.NoError(t, err)
	if l1.Name() != "i0" || l2.Name() != "i1" || l3.Name() != "i0" {
		t.Fatalf("Pick() names = %s %s %s, want i0 i1 i0", l1.Name(), l2.Name(), l3.Name())
	}
	if got := l1.Instance(); got != "i0" {
		t.Errorf("Lease.Instance() = %q, want %q", got, "i0")
	}
	if got := stateOf(t, b, "i0").InFlight; got != 2 {
		t.Errorf("i0 InFlight = %d, want 2", got)
	}
	l1.Done(balance.Success)
	l2.Done(balance.Failure)
	l3.Done(balance.Neutral)
	want := []balance.InstanceState{
		{Name: "i0", Eligible: true, Healthy: true, Calls: 2, Successes: 1},
		{Name: "i1", Eligible: true, Healthy: true, Calls: 1, Failures: 1, ConsecutiveFailures: 1},
	}
	require.Equal(t, want, b.Snapshot())
	if b.Len() != 2 {
		t.Errorf("Len() = %d, want 2", b.Len())
	}
}

func TestDonePanicsOnUnknownResult(t *testing.T) {
	b, _ := newClocked(t, 1)
	l, err := b.Pick()
	require.NoError(t, err)
	require.PanicsWithValue(t, "balance: Lease.Done(Result(9)): unknown result", func() { l.Done(balance.Result(9)) })
}

func TestPickPanicsOnBadPicker(t *testing.T) {
	b := balance.New(pool(2), badPicker{})
	require.PanicsWithValue(t, "balance: Picker balance_test.badPicker returned 2 for 2 candidates", func() { _, _ = b.Pick() })
}

type badPicker struct{}

func (badPicker) Pick(c balance.Candidates) int { return c.Len() }

// TestEjection walks one instance through repeated ejections: the threshold,
// the growing ejection time and its cap, the lazy return, the decay of the
// multiplier, and the results that reset or keep the failure count.
func TestEjection(t *testing.T) {
	b, clk := newClocked(t, 2,
		balance.WithFailureThreshold(3),
		balance.WithEjectionTime(10*time.Second),
		balance.WithMaxEjectionTime(25*time.Second),
	)
	var rec recorder
	defer b.Subscribe(rec.add)()

	F, S, N := balance.Failure, balance.Success, balance.Neutral
	steps := []struct {
		name    string
		advance time.Duration
		results []balance.Result
		want    time.Duration // how long i0 is ejected from now; 0 means not ejected
	}{
		{"below threshold", 0, []balance.Result{F, F}, 0},
		{"success resets", 0, []balance.Result{S, F, F}, 0},
		{"neutral keeps", 0, []balance.Result{N}, 0},
		{"threshold ejects for base", 0, []balance.Result{F}, 10 * time.Second},
		{"still out before the time", 9 * time.Second, nil, time.Second},
		{"back when the time is up", time.Second, nil, 0},
		{"back with a clean count", 0, []balance.Result{F, F}, 0},
		{"second ejection lasts twice", 0, []balance.Result{F}, 20 * time.Second},
		{"third ejection is capped", 20 * time.Second, repeat(F, 3), 25 * time.Second},
		{"fourth stays at the cap", 25 * time.Second, repeat(F, 3), 25 * time.Second},
		{"decayed by time in the pool", 25*time.Second + 20*time.Second, repeat(F, 3), 20 * time.Second},
		{"fully decayed", 20*time.Second + time.Hour, repeat(F, 3), 10 * time.Second},
	}
	for _, st := range steps {
		now := clk.Advance(st.advance)
		report(t, b, "i0", st.results...)
		s := stateOf(t, b, "i0")
		var got time.Duration
		if !s.EjectedUntil.IsZero() {
			got = s.EjectedUntil.Sub(now)
		}
		if got != st.want || s.Eligible != (st.want == 0) {
			t.Fatalf("%s: i0 ejected for %v (eligible %v), want %v", st.name, got, s.Eligible, st.want)
		}
		if st.want > 0 {
			for range 4 {
				if name := call(t, b, "", balance.Success); name != "i1" {
					t.Fatalf("%s: Pick() = %s while i0 is ejected, want i1", st.name, name)
				}
			}
		}
	}
	if got := stateOf(t, b, "i0").Ejections; got != 6 {
		t.Errorf("i0 Ejections = %d, want 6", got)
	}
	want := []string{
		"i0 ejected until 12:00:10", "i0 returned",
		"i0 ejected until 12:00:30", "i0 returned",
		"i0 ejected until 12:00:55", "i0 returned",
		"i0 ejected until 12:01:20", "i0 returned",
		"i0 ejected until 12:02:00", "i0 returned",
		"i0 ejected until 13:02:10",
	}
	require.Equal(t, want, rec.strings())
}

// TestMaxEjectionPercent fails every call on every instance and checks that
// no more instances than the percentage allows are ever ejected at once,
// that at least one stays eligible, and that the limit is reached.
func TestMaxEjectionPercent(t *testing.T) {
	tests := []struct {
		n, percent, want int
	}{
		{n: 10, percent: 30, want: 3},
		{n: 3, percent: 50, want: 1},
		{n: 4, percent: 100, want: 3}, // never the last eligible one
		{n: 2, percent: 49, want: 0},
		{n: 1, percent: 100, want: 0},
		{n: 5, percent: 0, want: 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d instances %d%%", tt.n, tt.percent), func(t *testing.T) {
			b, clk := newClocked(t, tt.n, balance.WithMaxEjectionPercent(tt.percent), balance.WithFailureThreshold(2))
			for i := range 50 * tt.n {
				l, err := b.Pick()
				if err != nil {
					t.Fatalf("call %d: Pick() error = %v, want nil", i, err)
				}
				l.Done(balance.Failure)
				ejected, eligible := counts(b)
				if ejected > tt.want || eligible < 1 {
					t.Fatalf("call %d: %d ejected, %d eligible; want at most %d ejected and at least 1 eligible", i, ejected, eligible, tt.want)
				}
				clk.Advance(time.Second) // ejections end and begin again
			}
			clk.Set(t0)
			b, _ = newClocked(t, tt.n, balance.WithMaxEjectionPercent(tt.percent), balance.WithFailureThreshold(2))
			for range 10 * tt.n {
				l, err := b.Pick()
				require.NoError(t, err)
				l.Done(balance.Failure)
			}
			if ejected, _ := counts(b); ejected != tt.want {
				t.Errorf("ejected after every instance failed = %d, want %d", ejected, tt.want)
			}
		})
	}
}

// TestConcurrentInvariants hammers a Balancer whose first instances always
// fail while the clock moves, and checks the invariants under the race
// detector: the ejection limit, one eligible instance at least, events per
// instance alternating ejected and returned, and balanced counters at the
// end.
func TestConcurrentInvariants(t *testing.T) {
	const n, goroutines, calls = 6, 8, 1000
	b, clk := newClocked(t, n, balance.WithFailureThreshold(3), balance.WithEjectionTime(time.Second))
	var (
		mu   sync.Mutex // guards last and bad
		last = map[string]balance.Kind{}
		bad  []string
	)
	defer b.Subscribe(func(e balance.Event) {
		mu.Lock()
		defer mu.Unlock()
		if prev, ok := last[e.Instance]; ok == (e.Kind == balance.Ejected) && (!ok || prev == e.Kind) {
			bad = append(bad, fmt.Sprintf("%s after %s", e, prev))
		}
		last[e.Instance] = e.Kind
	})()

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				l, err := b.Pick()
				if err != nil {
					t.Errorf("Pick() error = %v, want nil", err)
					return
				}
				if l.Name() == "i0" || l.Name() == "i1" || (l.Name() == "i2" && i%2 == 0) {
					l.Done(balance.Failure)
				} else {
					l.Done(balance.Success)
				}
				if i%50 == 0 && g == 0 {
					clk.Advance(300 * time.Millisecond)
					if ejected, eligible := counts(b); ejected > n/2 || eligible < 1 {
						t.Errorf("%d ejected, %d eligible; want at most %d ejected and at least 1 eligible", ejected, eligible, n/2)
					}
				}
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("events out of order: %v", bad)
	}
	var total uint64
	for _, s := range b.Snapshot() {
		if s.InFlight != 0 || s.Calls != s.Successes+s.Failures {
			t.Errorf("%s: InFlight %d, Calls %d, Successes %d, Failures %d; want 0 in flight and every call reported", s.Name, s.InFlight, s.Calls, s.Successes, s.Failures)
		}
		total += s.Calls
	}
	if total != goroutines*calls {
		t.Errorf("total Calls = %d, want %d", total, goroutines*calls)
	}
	if s := stateOf(t, b, "i0"); s.Ejections == 0 {
		t.Errorf("i0 Ejections = 0, want some")
	}
}

// TestSnapshotCountsDuringCalls takes snapshots while calls of every result
// are picked and done, and checks that each one adds up: Calls never less
// than Successes + Failures, and Calls never less than the calls already
// finished before the snapshot began.
func TestSnapshotCountsDuringCalls(t *testing.T) {
	const goroutines, calls = 4, 2000
	b := balance.New(pool(2), balance.NewRoundRobin(), balance.WithFailureThreshold(calls*goroutines+1))
	results := []balance.Result{balance.Success, balance.Failure, balance.Neutral}
	var (
		wg       sync.WaitGroup
		finished atomic.Uint64 // calls done, whatever their result
	)
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				l, err := b.Pick()
				if err != nil {
					t.Errorf("Pick() error = %v, want nil", err)
					return
				}
				l.Done(results[(g+i)%len(results)])
				finished.Add(1)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		before := finished.Load()
		var total uint64
		for _, s := range b.Snapshot() {
			if s.Calls < s.Successes+s.Failures {
				t.Fatalf("%s: Calls %d < Successes %d + Failures %d", s.Name, s.Calls, s.Successes, s.Failures)
			}
			total += s.Calls
		}
		if total < before {
			t.Fatalf("Snapshot() Calls total %d, want at least the %d calls finished before it", total, before)
		}
	}
	var total uint64
	for _, s := range b.Snapshot() {
		total += s.Calls
	}
	if total != goroutines*calls {
		t.Errorf("Calls total after the calls = %d, want %d", total, goroutines*calls)
	}
}

func TestErrNoHealthyInstanceIsASentinel(t *testing.T) {
	if !errors.Is(fmt.Errorf("wrapped: %w", balance.ErrNoHealthyInstance), balance.ErrNoHealthyInstance) {
		t.Fatal("errors.Is(wrapped ErrNoHealthyInstance) = false, want true")
	}
}
