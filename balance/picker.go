package balance

import (
	"math/rand/v2"
	"sync/atomic"
)

// A Picker chooses the instance for the next call among the eligible ones.
// The Balancer calls Pick on every call, from many goroutines at once, so
// implementations must be safe for concurrent use, and should neither block
// nor allocate.
//
// Pick returns an index in [0, c.Len()); c.Len() is at least 1.
type Picker interface {
	Pick(c Candidates) int
}

// Candidates are the instances a [Picker] may choose from: the eligible
// ones (healthy and not ejected), in the order the Balancer was given them.
// The in-flight counts are read live, so two reads may differ.
type Candidates struct {
	eligible []int
	slots    []slot
}

// Len returns the number of candidates.
func (c Candidates) Len() int { return len(c.eligible) }

// InFlight returns the number of calls candidate i is serving now.
func (c Candidates) InFlight(i int) int { return int(c.slots[c.eligible[i]].inflight.Load()) }

// Index returns the position of candidate i among all the Balancer's
// instances, for pickers that weigh instances differently.
func (c Candidates) Index(i int) int { return c.eligible[i] }

// RoundRobin picks the candidates in turn. It is safe for concurrent use,
// and its zero value is ready to use.
type RoundRobin struct {
	// The padding keeps the cursor, which every call writes, off the cache
	// lines of whatever is allocated next to the RoundRobin.
	_    [64]byte
	next atomic.Uint64
	_    [56]byte
}

// NewRoundRobin returns a [RoundRobin] picker that starts with the first
// candidate.
func NewRoundRobin() *RoundRobin { return &RoundRobin{} }

// Pick returns the candidate after the one it returned last.
func (p *RoundRobin) Pick(c Candidates) int {
	return int((p.next.Add(1) - 1) % uint64(c.Len()))
}

// Random picks a candidate uniformly at random. It is safe for concurrent
// use, and its zero value is ready to use.
type Random struct{}

// NewRandom returns a [Random] picker.
func NewRandom() *Random { return &Random{} }

// Pick returns a random candidate.
func (*Random) Pick(c Candidates) int { return rand.IntN(c.Len()) }

// LeastConnections picks the candidate with the fewest calls in flight,
// starting its scan at a rotating position so that ties are shared in turn.
// Its cost grows with the number of candidates. It is safe for concurrent
// use, and its zero value is ready to use.
type LeastConnections struct {
	// The padding keeps the cursor, which every call writes, off the cache
	// lines of whatever is allocated next to the LeastConnections.
	_    [64]byte
	next atomic.Uint64
	_    [56]byte
}

// NewLeastConnections returns a [LeastConnections] picker.
func NewLeastConnections() *LeastConnections { return &LeastConnections{} }

// Pick returns the least-loaded candidate.
func (p *LeastConnections) Pick(c Candidates) int {
	n := c.Len()
	best := int((p.next.Add(1) - 1) % uint64(n))
	load := c.InFlight(best)
	for k, i := 1, best; k < n && load > 0; k++ {
		if i++; i == n {
			i = 0
		}
		if l := c.InFlight(i); l < load {
			best, load = i, l
		}
	}
	return best
}

// P2C picks the less loaded of two distinct candidates chosen at random
// (the "power of two choices"): nearly as good as [LeastConnections] at
// keeping load even, at a constant cost whatever the number of candidates,
// and without sending every new call to the same idle instance. It is safe
// for concurrent use, and its zero value is ready to use.
type P2C struct{}

// NewP2C returns a [P2C] picker.
func NewP2C() *P2C { return &P2C{} }

// Pick returns the less loaded of two random candidates.
func (*P2C) Pick(c Candidates) int {
	n := c.Len()
	if n == 1 {
		return 0
	}
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	if c.InFlight(j) < c.InFlight(i) {
		return j
	}
	return i
}

var (
	_ Picker = (*RoundRobin)(nil)
	_ Picker = (*Random)(nil)
	_ Picker = (*LeastConnections)(nil)
	_ Picker = (*P2C)(nil)
)
