package breaker_test

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proxykit/proxy/breaker"
)

// eventLog collects the events a subscriber receives.
type eventLog struct {
	mu     sync.Mutex
	events []breaker.Event
}

func (l *eventLog) add(ev breaker.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

func (l *eventLog) get() []breaker.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

func TestEventsOfAHealingBackend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const cooldown = 30 * time.Second
		b := breaker.New(
			breaker.WithName("payments"),
			breaker.WithConsecutiveFailures(2),
			breaker.WithCooldown(cooldown),
			breaker.WithHalfOpenProbes(2),
		)
		var log eventLog
		b.Subscribe(log.add)

		t0 := time.Now()
		trip(t, b, 2)
		time.Sleep(cooldown + time.Second) // the backend heals meanwhile
		t1 := time.Now()
		for range 2 {
			if err := b.Do(func() error { return nil }); err != nil {
				t.Fatalf("Do(probe) = %v, want nil", err)
			}
		}
		want := []breaker.Event{
			{Name: "payments", From: breaker.Closed, To: breaker.Open, At: t0},
			{Name: "payments", From: breaker.Open, To: breaker.HalfOpen, At: t1},
			{Name: "payments", From: breaker.HalfOpen, To: breaker.Closed, At: t1},
		}
		if got := log.get(); !slices.Equal(got, want) {
			t.Errorf("events = %v, want %v", got, want)
		}
	})
}

func TestStateDeliversTheHalfOpenEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(breaker.WithConsecutiveFailures(1), breaker.WithCooldown(time.Second))
		var log eventLog
		b.Subscribe(log.add)
		trip(t, b, 1)
		time.Sleep(2 * time.Second)
		wantState(t, b, breaker.HalfOpen)
		got := log.get()
		if len(got) != 2 || got[1].From != breaker.Open || got[1].To != breaker.HalfOpen {
			t.Errorf("events after State() = %v, want closed->open, open->half-open", got)
		}
	})
}

// TestEventsUnderLoad drives a flapping breaker from many goroutines and
// checks that the subscriber saw every change, in order: each event starts
// from the state the previous one entered, and the last one enters the
// breaker's final state. A lost or reordered event breaks the chain.
func TestEventsUnderLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(
			breaker.WithConsecutiveFailures(2),
			breaker.WithCooldown(5*time.Millisecond),
			breaker.WithHalfOpenProbes(2),
		)
		var log eventLog
		b.Subscribe(log.add)
		var n atomic.Uint64
		flaky := func() error {
			if n.Add(1)%7 < 4 { // runs of failures and successes
				return errBoom
			}
			return nil
		}
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				for range 100 {
					_ = b.Do(flaky)
					time.Sleep(time.Millisecond)
				}
			})
		}
		wg.Wait()
		final := b.State()

		events := log.get()
		if len(events) < 10 {
			t.Fatalf("got %d events, want a flapping breaker (at least 10)", len(events))
		}
		from := breaker.Closed
		for i, ev := range events {
			if ev.From != from || ev.To == ev.From {
				t.Fatalf("event %d = %v -> %v, want a change from %v (events %v)", i, ev.From, ev.To, from, events)
			}
			if i > 0 && ev.At.Before(events[i-1].At) {
				t.Fatalf("event %d at %v, before event %d at %v", i, ev.At, i-1, events[i-1].At)
			}
			from = ev.To
		}
		if from != final {
			t.Errorf("last event enters %v, want the final state %v", from, final)
		}
	})
}

func TestSubscriberMayCallTheBreaker(t *testing.T) {
	b := breaker.New(breaker.WithConsecutiveFailures(1))
	var inner eventLog
	var seen []breaker.State
	b.Subscribe(func(ev breaker.Event) {
		// All of these would deadlock if the event came under a lock.
		seen = append(seen, b.State())
		_ = b.Counts()
		cancel := b.Subscribe(inner.add)
		cancel()
		_ = b.Do(func() error { return nil }) // rejected: the breaker is open
	})
	trip(t, b, 1)
	if want := []breaker.State{breaker.Open}; !slices.Equal(seen, want) {
		t.Errorf("State() seen by the subscriber = %v, want %v", seen, want)
	}
	if got := inner.get(); len(got) != 0 {
		t.Errorf("a subscription made and canceled inside a delivery got %v, want nothing", got)
	}
}

func TestSubscriberCallsThatChangeStateAreDeliveredInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(breaker.WithConsecutiveFailures(1), breaker.WithCooldown(time.Second))
		var log eventLog
		b.Subscribe(func(ev breaker.Event) {
			log.add(ev)
			if ev.To == breaker.HalfOpen {
				_ = b.Do(fail) // a nested change, delivered after this one
			}
		})
		trip(t, b, 1)
		time.Sleep(2 * time.Second)
		wantState(t, b, breaker.HalfOpen) // as read, before its event is delivered
		wantState(t, b, breaker.Open)     // the subscriber's probe failed
		var got []string
		for _, ev := range log.get() {
			got = append(got, ev.From.String()+">"+ev.To.String())
		}
		want := []string{"closed>open", "open>half-open", "half-open>open"}
		if !slices.Equal(got, want) {
			t.Errorf("events = %v, want %v", got, want)
		}
	})
}

func TestCancelStopsDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(breaker.WithConsecutiveFailures(1), breaker.WithCooldown(time.Second))
		var kept, dropped eventLog
		b.Subscribe(kept.add)
		cancel := b.Subscribe(dropped.add)
		trip(t, b, 1)
		cancel()
		cancel() // harmless
		time.Sleep(2 * time.Second)
		_ = b.Do(func() error { return nil })
		if got := len(kept.get()); got != 3 {
			t.Errorf("kept subscriber got %d events, want 3", got)
		}
		if got := len(dropped.get()); got != 1 {
			t.Errorf("canceled subscriber got %d events, want 1 (before cancel)", got)
		}
	})
}

// TestCancelDuringDeliveryTakesEffectAtOnce has one subscriber cancel
// another while an event is being delivered on the same goroutine: the
// canceled one must not get that event.
func TestCancelDuringDeliveryTakesEffectAtOnce(t *testing.T) {
	b := breaker.New(breaker.WithConsecutiveFailures(1))
	var second eventLog
	var cancelSecond func()
	b.Subscribe(func(breaker.Event) { cancelSecond() })
	cancelSecond = b.Subscribe(second.add)
	trip(t, b, 1)
	if got := second.get(); len(got) != 0 {
		t.Errorf("subscriber canceled before the event reached it got %v, want nothing", got)
	}
}

func TestLateSubscriberSeesOnlyLaterEvents(t *testing.T) {
	b := breaker.New(breaker.WithConsecutiveFailures(1))
	trip(t, b, 1)
	var log eventLog
	b.Subscribe(log.add)
	_ = b.State()
	if got := log.get(); len(got) != 0 {
		t.Errorf("late subscriber got %v, want no event", got)
	}
}

func TestPanickingSubscriberDoesNotStopDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(breaker.WithConsecutiveFailures(1), breaker.WithCooldown(time.Second))
		var log eventLog
		panicked := false
		b.Subscribe(func(ev breaker.Event) {
			if !panicked {
				panicked = true
				panic("subscriber bug")
			}
			log.add(ev)
		})
		got := func() (r any) {
			defer func() { r = recover() }()
			_ = b.Do(fail)
			return nil
		}()
		if got != "subscriber bug" {
			t.Fatalf("Do() with a panicking subscriber raised %v, want %q", got, "subscriber bug")
		}
		wantState(t, b, breaker.Open) // the failure was counted all the same
		time.Sleep(2 * time.Second)
		if err := b.Do(func() error { return nil }); err != nil {
			t.Fatalf("Do(probe) = %v, want nil", err)
		}
		var transitions []string
		for _, ev := range log.get() {
			transitions = append(transitions, ev.From.String()+">"+ev.To.String())
		}
		want := []string{"open>half-open", "half-open>closed"}
		if !slices.Equal(transitions, want) {
			t.Errorf("events after the panic = %v, want %v", transitions, want)
		}
	})
}
