// Package stripe picks the stripe of a striped count that the calling
// goroutine should write: the one its processor used last.
//
// A count that every call adds to is a cache line that every core writes,
// and on two cores each add then waits for the line to come back from the
// other core. Striping the count, one stripe per processor, keeps each
// core on lines of its own; a read adds the stripes up. Go has no public
// processor id, but a sync.Pool keeps a private slot per processor: a
// goroutine that takes a stripe number from the pool and puts it back at
// once gets the one its processor's goroutines used last, and goroutines
// of different processors get different ones. A random stripe, which
// costs less to pick, would have each core write lines the other wrote
// last about half the time.
package stripe

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Max bounds the number of stripes, and so the memory of a striped count.
const Max = 16

// A Picker hands out stripe numbers in [0, N()). It is safe for concurrent
// use. Use [New]; a Picker must not be copied after first use.
type Picker struct {
	n    int
	next atomic.Uint32
	ids  [Max]int // ids[i] == i, so that the pool holds pointers, which it stores without allocating
	pool sync.Pool
}

// New returns a Picker of one stripe per processor (GOMAXPROCS when New
// is called), at most [Max].
func New() *Picker {
	p := &Picker{n: min(max(runtime.GOMAXPROCS(0), 1), Max)}
	for i := range p.ids {
		p.ids[i] = i
	}
	return p
}

// N returns the number of stripes.
func (p *Picker) N() int { return p.n }

// Pick returns the stripe the calling goroutine should write: the one its
// processor used last, or the next unused one. It does not allocate once
// each processor has had its stripe.
func (p *Picker) Pick() int {
	if p.n == 1 {
		return 0
	}
	id, ok := p.pool.Get().(*int)
	if !ok {
		id = &p.ids[p.next.Add(1)%uint32(p.n)]
	}
	p.pool.Put(id)
	return *id
}
