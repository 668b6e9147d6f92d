package breaker_test

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proxykit/proxy/breaker"
)

// TestFailingBackendSeesBoundedProbes hammers a tripped breaker in front of
// a slow backend that always fails, from 200 goroutines, through several
// open periods. Every call that reaches the backend after the trip is a
// probe, and each half-open period lets at most the configured number
// through. The half-open periods are a cool-down apart and each lasts only
// as long as its first probe, so the backend's calls fall into clusters, one
// per period.
func TestFailingBackendSeesBoundedProbes(t *testing.T) {
	const (
		callers  = 200
		probes   = 3
		cooldown = time.Second
		periods  = 5
	)
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(
			breaker.WithConsecutiveFailures(5),
			breaker.WithCooldown(cooldown),
			breaker.WithHalfOpenProbes(probes),
		)
		var halfOpens atomic.Int64
		b.Subscribe(func(ev breaker.Event) {
			if ev.To == breaker.HalfOpen {
				halfOpens.Add(1)
			}
		})
		trip(t, b, 5)
		wantState(t, b, breaker.Open)

		var (
			calls atomic.Int64
			mu    sync.Mutex
			times []time.Time // when each backend call began
		)
		backend := func() error {
			calls.Add(1)
			mu.Lock()
			times = append(times, time.Now())
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
			return errBoom
		}
		var rejected atomic.Int64
		deadline := time.Now().Add(periods*cooldown + cooldown/2)
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					switch err := b.Do(backend); {
					case errors.Is(err, breaker.ErrOpen), errors.Is(err, breaker.ErrTooManyRequests):
						rejected.Add(1)
					case !errors.Is(err, errBoom):
						t.Errorf("Do() = %v, want %v, %v or %v", err, errBoom, breaker.ErrOpen, breaker.ErrTooManyRequests)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			})
		}
		wg.Wait()

		n := halfOpens.Load()
		if n != periods {
			t.Errorf("half-open periods = %d, want %d", n, periods)
		}
		slices.SortFunc(times, time.Time.Compare)
		var clusters []int // backend calls per half-open period
		for i, at := range times {
			if i == 0 || at.Sub(times[i-1]) > cooldown/2 {
				clusters = append(clusters, 0)
			}
			clusters[len(clusters)-1]++
		}
		if len(clusters) != int(n) {
			t.Errorf("backend calls fall into %d periods, want one per half-open period (%d): %v", len(clusters), n, clusters)
		}
		for i, k := range clusters {
			if k > probes {
				t.Errorf("half-open period %d let %d calls reach the backend, want at most %d", i, k, probes)
			}
		}
		if got, most := calls.Load(), int64(probes)*n; got > most {
			t.Errorf("backend calls after the trip = %d, want at most %d", got, most)
		}
		if rejected.Load() == 0 {
			t.Error("no call was rejected, want most of them")
		}
	})
}

// TestHalfOpenLetsExactlyTheProbesThrough sends 1000 calls at the instant
// the open period ends. The probes block in the backend until every caller
// has tried, so exactly the configured number reach it, and all the others
// are told ErrTooManyRequests.
func TestHalfOpenLetsExactlyTheProbesThrough(t *testing.T) {
	const (
		callers  = 1000
		probes   = 7
		cooldown = time.Minute
	)
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(
			breaker.WithConsecutiveFailures(1),
			breaker.WithCooldown(cooldown),
			breaker.WithHalfOpenProbes(probes),
		)
		trip(t, b, 1)
		time.Sleep(cooldown + time.Nanosecond)

		var entered, tooMany, succeeded atomic.Int64
		release := make(chan struct{})
		backend := func() error {
			entered.Add(1)
			<-release
			return nil
		}
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				switch err := b.Do(backend); {
				case err == nil:
					succeeded.Add(1)
				case errors.Is(err, breaker.ErrTooManyRequests):
					tooMany.Add(1)
				default:
					t.Errorf("Do() = %v, want nil or %v", err, breaker.ErrTooManyRequests)
				}
			})
		}
		synctest.Wait() // every caller has returned or is blocked in the backend
		if got := entered.Load(); got != probes {
			t.Errorf("backend calls while half-open = %d, want %d", got, probes)
		}
		if got := tooMany.Load(); got != callers-probes {
			t.Errorf("calls rejected with ErrTooManyRequests = %d, want %d", got, callers-probes)
		}
		close(release)
		wg.Wait()
		if got := succeeded.Load(); got != probes {
			t.Errorf("successful probes = %d, want %d", got, probes)
		}
		wantState(t, b, breaker.Closed)
	})
}
