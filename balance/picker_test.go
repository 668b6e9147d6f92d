package balance_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/proxykit/proxy/balance"
)

func pickers() []struct {
	name string
	new  func() balance.Picker
} {
	return []struct {
		name string
		new  func() balance.Picker
	}{
		{"RoundRobin", func() balance.Picker { return balance.NewRoundRobin() }},
		{"Random", func() balance.Picker { return balance.NewRandom() }},
		{"LeastConnections", func() balance.Picker { return balance.NewLeastConnections() }},
		{"P2C", func() balance.Picker { return balance.NewP2C() }},
	}
}

// TestPickersSkipIneligible ejects one instance of three and checks that no
// picker returns it, and that every picker reaches both others.
func TestPickersSkipIneligible(t *testing.T) {
	for _, p := range pickers() {
		t.Run(p.name, func(t *testing.T) {
			b := balance.New(pool(3), p.new(), balance.WithFailureThreshold(1))
			report(t, b, "i1", balance.Failure)
			require.False(t, stateOf(t, b, "i1").Eligible, "i1 Eligible after its failure")
			seen := map[string]int{}
			for range 300 {
				seen[call(t, b, "", balance.Success)]++
			}
			if seen["i1"] != 0 || seen["i0"] == 0 || seen["i2"] == 0 {
				t.Errorf("picks = %v, want i0 and i2 only", seen)
			}
		})
	}
}

func TestPickersSingleCandidate(t *testing.T) {
	for _, p := range pickers() {
		t.Run(p.name, func(t *testing.T) {
			b := balance.New(pool(1), p.new())
			for range 10 {
				if got := call(t, b, "", balance.Success); got != "i0" {
					t.Fatalf("Pick() = %s, want i0", got)
				}
			}
		})
	}
}

func TestRoundRobinTakesTurns(t *testing.T) {
	b := balance.New(pool(3), balance.NewRoundRobin())
	var got []string
	for range 7 {
		got = append(got, call(t, b, "", balance.Success))
	}
	require.Equal(t, []string{"i0", "i1", "i2", "i0", "i1", "i2", "i0"}, got)
}

// TestLoadAwarePickersAvoidBusyInstance loads one instance with many calls
// in flight and checks that LeastConnections and P2C send the next calls to
// the others. It is deterministic: while both others have fewer calls in
// flight than the busy one, neither picker can choose it.
func TestLoadAwarePickersAvoidBusyInstance(t *testing.T) {
	for _, p := range pickers()[2:] {
		t.Run(p.name, func(t *testing.T) {
			b := balance.New(pool(3), p.new())
			byName := map[string][]balance.Lease[string]{}
			for range 30 {
				l, err := b.Pick()
				require.NoError(t, err)
				byName[l.Name()] = append(byName[l.Name()], l)
			}
			busy := "i0"
			for name, ls := range byName {
				if len(ls) > len(byName[busy]) {
					busy = name
				}
			}
			for name, ls := range byName {
				if name != busy {
					for _, l := range ls {
						l.Done(balance.Success)
					}
				}
			}
			held := len(byName[busy])
			if got := stateOf(t, b, busy).InFlight; got != held || held < 10 {
				t.Fatalf("%s InFlight = %d, want %d (at least 10)", busy, got, held)
			}
			var more []balance.Lease[string]
			for range held - 1 {
				l, err := b.Pick()
				require.NoError(t, err)
				if l.Name() == busy {
					t.Fatalf("Pick() = %s with %d calls in flight on it, want one of the idle instances", busy, held)
				}
				more = append(more, l)
			}
			for _, l := range append(more, byName[busy]...) {
				l.Done(balance.Success)
			}
		})
	}
}

// TestLeastConnectionsSharesTies checks that, with equal loads, the scan
// starts at a rotating position instead of always at the first instance.
func TestLeastConnectionsSharesTies(t *testing.T) {
	b := balance.New(pool(3), balance.NewLeastConnections())
	var got []string
	for range 6 {
		got = append(got, call(t, b, "", balance.Success))
	}
	require.Equal(t, []string{"i0", "i1", "i2", "i0", "i1", "i2"}, got)
}

// TestCandidates checks what a custom Picker sees: the eligible instances,
// their positions in the pool and their calls in flight.
func TestCandidates(t *testing.T) {
	type seen struct{ index, inFlight []int }
	var (
		target int // the pool position the picker picks
		last   seen
	)
	b := balance.New(pool(3), pickerFunc(func(c balance.Candidates) int {
		last = seen{}
		k := 0
		for i := range c.Len() {
			last.index = append(last.index, c.Index(i))
			last.inFlight = append(last.inFlight, c.InFlight(i))
			if c.Index(i) == target {
				k = i
			}
		}
		return k
	}), balance.WithFailureThreshold(1))

	target = 2
	held, err := b.Pick()
	require.NoError(t, err)
	target = 0
	l, err := b.Pick()
	require.NoError(t, err)
	l.Done(balance.Failure) // ejects i0
	require.Equal(t, seen{index: []int{0, 1, 2}, inFlight: []int{0, 0, 1}}, last)

	l, err = b.Pick()
	require.NoError(t, err)
	l.Done(balance.Success)
	require.Equal(t, seen{index: []int{1, 2}, inFlight: []int{0, 1}}, last)
	held.Done(balance.Success)
}

type pickerFunc func(balance.Candidates) int

func (f pickerFunc) Pick(c balance.Candidates) int { return f(c) }
