package balance_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/proxykit/proxy/balance"
)

// TestEventsInOrder checks that every subscriber sees the changes in the
// order they happened, each with its time, that a subscriber sees only the
// changes after it subscribed, and none after it canceled.
func TestEventsInOrder(t *testing.T) {
	b, clk := newClocked(t, 4, balance.WithFailureThreshold(1), balance.WithEjectionTime(time.Minute))
	var all, late recorder
	cancelAll := b.Subscribe(all.add)
	defer cancelAll()

	report(t, b, "i0", balance.Failure) // 12:00 i0 ejected until 12:01
	clk.Advance(10 * time.Second)
	cancelLate := b.Subscribe(late.add)
	report(t, b, "i2", balance.Failure) // 12:00:10 i2 ejected until 12:01:10
	clk.Advance(time.Minute)
	call(t, b, "", balance.Success) // 12:01:10 both return, in pool order
	cancelLate()
	report(t, b, "i3", balance.Failure) // 12:01:10 i3 ejected until 12:02:10

	want := []balance.Event{
		{Kind: balance.Ejected, Instance: "i0", Index: 0, Time: t0, Until: t0.Add(time.Minute)},
		{Kind: balance.Ejected, Instance: "i2", Index: 2, Time: t0.Add(10 * time.Second), Until: t0.Add(70 * time.Second)},
		{Kind: balance.Returned, Instance: "i0", Index: 0, Time: t0.Add(time.Minute)},
		{Kind: balance.Returned, Instance: "i2", Index: 2, Time: t0.Add(70 * time.Second)},
		{Kind: balance.Ejected, Instance: "i3", Index: 3, Time: t0.Add(70 * time.Second), Until: t0.Add(130 * time.Second)},
	}
	require.Equal(t, want, all.events)
	require.Equal(t, want[1:4], late.events)
}

// TestSubscriberMayUseTheBalancer checks that a subscriber can call the
// Balancer, even in a way that causes another event, without a deadlock,
// and that the event it caused comes after the one it is handling.
func TestSubscriberMayUseTheBalancer(t *testing.T) {
	b, _ := newClocked(t, 4, balance.WithFailureThreshold(1), balance.WithMaxEjectionPercent(100))
	var rec recorder
	defer b.Subscribe(func(e balance.Event) {
		rec.add(e)
		if e.Instance == "i0" {
			report(t, b, "i1", balance.Failure) // ejects i1 from inside the delivery
		}
		_ = b.Snapshot()
	})()
	report(t, b, "i0", balance.Failure)
	require.Equal(t, []string{"i0 ejected until 12:00:30", "i1 ejected until 12:00:30"}, rec.strings())
}

// TestPanickingSubscriberLosesNoEvents has a subscriber panic while two
// events wait for it: the panic reaches the caller whose call was
// delivering, and the other event is delivered by the next call.
func TestPanickingSubscriberLosesNoEvents(t *testing.T) {
	b, clk := newClocked(t, 4, balance.WithFailureThreshold(1), balance.WithEjectionTime(time.Minute))
	var rec recorder
	panicked := false
	defer b.Subscribe(func(e balance.Event) {
		rec.add(e)
		if e.Kind == balance.Returned && !panicked {
			panicked = true
			panic("subscriber bug")
		}
	})()
	report(t, b, "i0", balance.Failure)
	report(t, b, "i2", balance.Failure)
	clk.Advance(time.Minute) // both are due back: two events for one delivery
	require.PanicsWithValue(t, "subscriber bug", func() { _, _ = b.Pick() })
	_ = b.Snapshot()
	want := []string{"i0 ejected until 12:01:00", "i2 ejected until 12:01:00", "i0 returned", "i2 returned"}
	require.Equal(t, want, rec.strings())
}

func TestSubscribeNilPanics(t *testing.T) {
	b, _ := newClocked(t, 1)
	require.PanicsWithValue(t, "balance: Subscribe(nil)", func() { b.Subscribe(nil) })
}

func TestStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{balance.Down.String(), "down"},
		{balance.Up.String(), "up"},
		{balance.Ejected.String(), "ejected"},
		{balance.Returned.String(), "returned"},
		{balance.Kind(7).String(), "Kind(7)"},
		{balance.Success.String(), "success"},
		{balance.Failure.String(), "failure"},
		{balance.Neutral.String(), "neutral"},
		{balance.Result(7).String(), "Result(7)"},
		{balance.Event{Kind: balance.Down, Instance: "a", Err: errors.New("refused")}.String(), "a down: refused"},
		{balance.Event{Kind: balance.Up, Instance: "a"}.String(), "a up"},
		{balance.Event{Kind: balance.Ejected, Instance: "a", Until: t0.Add(90 * time.Second)}.String(), "a ejected until 12:01:30"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("String() = %q, want %q", tt.got, tt.want)
		}
	}
}
