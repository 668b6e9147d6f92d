package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/balance"
	"github.com/proxykit/proxy/bulkhead"
	"github.com/proxykit/proxy/internal/clocktest"
)

var errBalancedBackend = errors.New("backend: internal error")

// balancedInstance is an instance that answers, or fails every call while
// fail is set, and counts its calls.
type balancedInstance struct {
	fail  atomic.Bool
	calls atomic.Int64
	err   error // returned instead of errBalancedBackend when set
}

func (s *balancedInstance) Process(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
	s.calls.Add(1)
	if s.fail.Load() {
		if s.err != nil {
			return nil, s.err
		}
		return nil, errBalancedBackend
	}
	return &proxy.Response{RequestID: req.ID, Service: req.Service}, nil
}

// balancedChecked is an instance with a Health method, which the pool's
// active checks call.
type balancedChecked struct {
	balancedInstance
	down atomic.Bool // Health fails while set
}

func (s *balancedChecked) Health(context.Context) error {
	if s.down.Load() {
		return errors.New("health: down")
	}
	return nil
}

// balancedPool names the instances b0, b1, ... and pools them.
func balancedPool(svcs []proxy.Service, p balance.Picker, opts ...balance.Option) *balance.Balancer[proxy.Service] {
	in := make([]balance.Instance[proxy.Service], len(svcs))
	for i, s := range svcs {
		in[i] = balance.Instance[proxy.Service]{Name: fmt.Sprintf("b%d", i), Value: s}
	}
	return balance.New(in, p, opts...)
}

func balancedInstances(n int) ([]*balancedInstance, []proxy.Service) {
	insts := make([]*balancedInstance, n)
	svcs := make([]proxy.Service, n)
	for i := range insts {
		insts[i] = &balancedInstance{}
		svcs[i] = insts[i]
	}
	return insts, svcs
}

func balancedState(t *testing.T, pool *balance.Balancer[proxy.Service], name string) balance.InstanceState {
	t.Helper()
	for _, s := range pool.Snapshot() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("Snapshot() has no instance %s", name)
	return balance.InstanceState{}
}

// TestBalancedEjectsFailingInstance runs round robin over three instances,
// one of which fails every call, with the default ejection settings
// (threshold 5, 30s growing to 5m), one call every 10ms of fake time and no
// retry. The failing instance takes at most 5 calls per ejection (it has no
// Health method, so it gets no probes), at least 99% of the calls succeed,
// the healthy two share them within 1% of evenly, and once it heals the
// failing instance is back in the rotation.
func TestBalancedEjectsFailingInstance(t *testing.T) {
	const calls = 30_000 // 300s of fake time
	insts, svcs := balancedInstances(3)
	insts[2].fail.Store(true)
	clk := clocktest.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	pool := balancedPool(svcs, balance.NewRoundRobin(), balance.WithClock(clk))
	svc := proxy.Balanced(pool)

	ok := 0
	for range calls {
		resp, err := svc.Process(t.Context(), aliceReq)
		if err == nil {
			ok++
			if resp.Instance == "b2" {
				t.Fatalf("Process() answered by the failing instance b2")
			}
		} else {
			require.ErrorIs(t, err, errBalancedBackend)
		}
		clk.Advance(10 * time.Millisecond)
	}

	failing := balancedState(t, pool, "b2")
	if failing.Ejections < 3 {
		t.Errorf("b2 Ejections = %d, want at least 3 in 300s", failing.Ejections)
	}
	if got, max := insts[2].calls.Load(), int64(5*(failing.Ejections+1)); got > max {
		t.Errorf("b2 took %d calls in %d ejections, want at most %d", got, failing.Ejections, max)
	}
	if rate := float64(ok) / calls; rate < 0.99 {
		t.Errorf("success rate = %.4f, want at least 0.99", rate)
	}
	fair := float64(ok) / 2
	for i := range 2 {
		if got := float64(insts[i].calls.Load()); math.Abs(got-fair) > fair/100 {
			t.Errorf("b%d took %.0f calls, want within 1%% of %.0f", i, got, fair)
		}
	}

	t.Logf("%d of %d calls succeeded; b0 %d, b1 %d, b2 %d calls in %d ejections",
		ok, calls, insts[0].calls.Load(), insts[1].calls.Load(), insts[2].calls.Load(), failing.Ejections)

	insts[2].fail.Store(false)
	clk.Advance(5 * time.Minute) // past the longest ejection
	before := insts[2].calls.Load()
	for range 300 {
		_, err := svc.Process(t.Context(), aliceReq)
		require.NoError(t, err)
	}
	if got := insts[2].calls.Load() - before; got != 100 {
		t.Errorf("healed b2 took %d of 300 calls, want 100", got)
	}
	if s := balancedState(t, pool, "b2"); !s.Eligible || s.ConsecutiveFailures != 0 {
		t.Errorf("healed b2: Eligible %v, ConsecutiveFailures %d; want true, 0", s.Eligible, s.ConsecutiveFailures)
	}
}

// TestBalancedRetryGoesElsewhere retries each failed call once, as Retrying
// outside Balanced would, and checks that the retry lands on another
// instance and succeeds.
func TestBalancedRetryGoesElsewhere(t *testing.T) {
	insts, svcs := balancedInstances(3)
	insts[0].fail.Store(true)
	pool := balancedPool(svcs, balance.NewRoundRobin(), balance.WithFailureThreshold(3))
	svc := proxy.Balanced(pool)
	retries := 0
	for i := range 30 {
		resp, err := svc.Process(t.Context(), aliceReq)
		if err != nil {
			retries++
			before := insts[0].calls.Load()
			resp, err = svc.Process(t.Context(), aliceReq)
			if insts[0].calls.Load() != before {
				t.Fatalf("call %d: retry went to the instance that failed", i)
			}
		}
		require.NoError(t, err, "call %d", i)
		if resp.Instance == "b0" {
			t.Fatalf("call %d: answered by b0, which fails every call", i)
		}
	}
	if retries != 3 {
		t.Errorf("retries = %d, want 3 (then b0 is ejected)", retries)
	}
	if s := balancedState(t, pool, "b0"); s.Eligible || s.Failures != 3 {
		t.Errorf("b0: Eligible %v, Failures %d; want false, 3", s.Eligible, s.Failures)
	}
}

// TestBalancedResults checks what each kind of error counts as for the
// instance, and that the error reaches the caller unchanged.
func TestBalancedResults(t *testing.T) {
	tests := []struct {
		name                string
		err                 error
		successes, failures uint64
	}{
		{"ok", nil, 1, 0},
		{"invalid request", &proxy.InvalidRequestError{Field: "data", Reason: "missing"}, 1, 0},
		{"unauthenticated", proxy.ErrUnauthenticated, 1, 0},
		{"forbidden", proxy.ErrForbidden, 1, 0},
		{"rate limited", &proxy.RateLimitError{Key: "alice"}, 0, 0},
		{"canceled", context.Canceled, 0, 0},
		{"shed by a bulkhead", fmt.Errorf("%w: %w", proxy.ErrOverloaded, bulkhead.ErrFull), 0, 0},
		{"deadline", fmt.Errorf("backend: %w", context.DeadlineExceeded), 0, 1},
		{"circuit open", proxy.ErrCircuitOpen, 0, 1},
		{"no healthy instance downstream", proxy.ErrNoHealthyInstance, 0, 1},
		{"internal error", errBalancedBackend, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst := &balancedInstance{err: tt.err}
			inst.fail.Store(tt.err != nil)
			pool := balancedPool([]proxy.Service{inst}, balance.NewRoundRobin())
			_, err := proxy.Balanced(pool).Process(t.Context(), aliceReq)
			if err != tt.err { // the very error the instance returned, not a wrapper
				t.Errorf("Process() error = %v, want %v unchanged", err, tt.err)
			}
			s := balancedState(t, pool, "b0")
			if s.Successes != tt.successes || s.Failures != tt.failures || s.InFlight != 0 {
				t.Errorf("Process() with %v: Successes %d, Failures %d, InFlight %d; want %d, %d, 0",
					tt.err, s.Successes, s.Failures, s.InFlight, tt.successes, tt.failures)
			}
		})
	}
}

// TestBalancedResponse checks that the response names the instance, unless
// the instance named itself, and that the caller's request is left alone.
func TestBalancedResponse(t *testing.T) {
	named := proxy.ServiceFunc(func(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
		return &proxy.Response{RequestID: req.ID, Instance: "host-7"}, nil
	})
	pool := balancedPool([]proxy.Service{echo, named}, balance.NewRoundRobin())
	svc := proxy.Balanced(pool)
	req := aliceReq.Clone()
	for _, want := range []string{"b0", "host-7"} {
		resp, err := svc.Process(t.Context(), req)
		require.NoError(t, err)
		if resp.Instance != want || resp.RequestID != aliceReq.ID {
			t.Errorf("Process() = {RequestID %q, Instance %q}, want {%q, %q}", resp.RequestID, resp.Instance, aliceReq.ID, want)
		}
	}
	require.Equal(t, aliceReq, req, "the caller's request after Process")
}

// TestBalancedLeavesSharedResponseAlone gives every call one shared response
// that names no instance, from many goroutines: each caller gets the
// instance's name on a copy, and the shared response is never written (the
// race detector would see the concurrent writes).
func TestBalancedLeavesSharedResponseAlone(t *testing.T) {
	shared := &proxy.Response{RequestID: aliceReq.ID, Data: json.RawMessage(`{"ok":true}`)}
	static := proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		return shared, nil
	})
	svc := proxy.Balanced(balancedPool([]proxy.Service{static, static}, balance.NewRoundRobin()))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				resp, err := svc.Process(t.Context(), aliceReq)
				if err != nil || resp == shared || (resp.Instance != "b0" && resp.Instance != "b1") {
					t.Errorf("Process() = %p %+v, %v, want a copy of %p naming b0 or b1", resp, resp, err, shared)
					return
				}
			}
		})
	}
	wg.Wait()
	if shared.Instance != "" {
		t.Errorf("shared response's Instance = %q after Process, want it unchanged (empty)", shared.Instance)
	}
}

// TestBalancedAllDown checks that with every instance down by its active
// health checks Process fails at once with ErrNoHealthyInstance and calls no
// instance, and that it serves again when one comes up.
func TestBalancedAllDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		insts := make([]*balancedChecked, 3)
		svcs := make([]proxy.Service, 3)
		for i := range insts {
			insts[i] = &balancedChecked{}
			insts[i].down.Store(true)
			svcs[i] = insts[i]
		}
		pool := balancedPool(svcs, balance.NewRoundRobin(),
			balance.WithCheckInterval(time.Second),
			balance.WithUnhealthyThreshold(2),
			balance.WithHealthyThreshold(1),
		)
		pool.Start()
		defer pool.Close()
		svc := proxy.Balanced(pool)
		time.Sleep(time.Second) // the second failed check of each
		synctest.Wait()

		_, err := svc.Process(t.Context(), aliceReq)
		require.ErrorIs(t, err, proxy.ErrNoHealthyInstance)
		require.ErrorIs(t, err, balance.ErrNoHealthyInstance)
		if got := proxy.OutcomeOf(err); got != proxy.OutcomeNoHealthyInstance {
			t.Errorf("OutcomeOf(%v) = %v, want %v", err, got, proxy.OutcomeNoHealthyInstance)
		}
		for i, inst := range insts {
			if n := inst.calls.Load(); n != 0 {
				t.Errorf("b%d took %d calls while down, want 0", i, n)
			}
		}

		insts[1].down.Store(false)
		time.Sleep(time.Second)
		synctest.Wait()
		for range 3 {
			resp, err := svc.Process(t.Context(), aliceReq)
			require.NoError(t, err)
			if resp.Instance != "b1" {
				t.Errorf("Process() answered by %s, want b1, the only one up", resp.Instance)
			}
		}
	})
}

func TestBalancedPanicCountsAsFailure(t *testing.T) {
	boom := proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) { panic("boom") })
	pool := balancedPool([]proxy.Service{boom}, balance.NewRoundRobin())
	require.PanicsWithValue(t, "boom", func() { _, _ = proxy.Balanced(pool).Process(t.Context(), aliceReq) })
	if s := balancedState(t, pool, "b0"); s.Failures != 1 || s.InFlight != 0 {
		t.Errorf("after a panic: Failures %d, InFlight %d; want 1, 0", s.Failures, s.InFlight)
	}
}

func TestBalancedCanceledContext(t *testing.T) {
	insts, svcs := balancedInstances(2)
	pool := balancedPool(svcs, balance.NewRoundRobin())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := proxy.Balanced(pool).Process(ctx, aliceReq)
	require.ErrorIs(t, err, context.Canceled)
	if n := insts[0].calls.Load() + insts[1].calls.Load(); n != 0 {
		t.Errorf("instances took %d calls for a canceled context, want 0", n)
	}
}

func TestBalancedNilPanics(t *testing.T) {
	require.PanicsWithValue(t, "proxy: Balanced with a nil Balancer", func() { proxy.Balanced(nil) })
}

// TestBalancedConcurrent spreads calls from many goroutines over a pool with
// a slow-to-fail instance, and checks under the race detector that every
// call is accounted for.
func TestBalancedConcurrent(t *testing.T) {
	insts, svcs := balancedInstances(4)
	insts[3].fail.Store(true)
	pool := balancedPool(svcs, balance.NewP2C())
	svc := proxy.Balanced(pool)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 8 {
		wg.Go(func() {
			for range 500 {
				if _, err := svc.Process(t.Context(), aliceReq); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	var calls, failures uint64
	for _, s := range pool.Snapshot() {
		require.Zero(t, s.InFlight, "%s InFlight", s.Name)
		calls += s.Calls
		failures += s.Failures
	}
	if calls != 8*500 || failures != uint64(failed.Load()) {
		t.Errorf("Calls %d, Failures %d; want %d, %d", calls, failures, 8*500, failed.Load())
	}
}

// BenchmarkBalanced measures a call through Balanced to one of five
// instances that answer at once, with round robin and with P2C.
func BenchmarkBalanced(b *testing.B) {
	pickers := []struct {
		name string
		p    func() balance.Picker
	}{
		{"RoundRobin", func() balance.Picker { return balance.NewRoundRobin() }},
		{"P2C", func() balance.Picker { return balance.NewP2C() }},
	}
	for _, pk := range pickers {
		b.Run(pk.name, func(b *testing.B) {
			svcs := make([]proxy.Service, 5)
			for i := range svcs {
				svcs[i] = balancedStatic
			}
			benchProcess(b, proxy.Balanced(balancedPool(svcs, pk.p())), aliceReq)
		})
	}
}

// balancedStatic answers every call with one shared response that already
// names its instance, so that the benchmark measures Balanced alone.
var balancedStatic = proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
	return balancedStaticResp, nil
})

var balancedStaticResp = &proxy.Response{RequestID: "req_1", Instance: "static"}
