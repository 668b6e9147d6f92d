package stats

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxykit/proxy"
	stripepick "github.com/proxykit/proxy/internal/stripe"
)

// OtherService is the name that calls are counted under once
// [WithMaxServices] distinct services have been seen, so that a flood of
// made-up service names cannot use unbounded memory.
const OtherService = "_other"

const (
	// numSlots is how many slots the window is cut into: it slides one slot
	// at a time.
	numSlots           = 12
	defaultWindow      = time.Minute
	minWindow          = time.Second
	defaultMaxServices = 256
)

// A Clock tells the time. *clocktest.Clock and any other type with this
// method satisfy it.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// An Option configures [New].
type Option func(*config)

type config struct {
	clock       Clock
	window      time.Duration
	maxServices int
}

// WithClock sets the clock the Recorder reads to place the window, when it
// is created and when a snapshot is taken. Give [proxy.Instrumented] the same
// clock: calls are placed in the window by the times it observed. The
// default is the system clock. It panics if c is nil.
func WithClock(c Clock) Option {
	if c == nil {
		panic("stats: WithClock(nil)")
	}
	return func(cfg *config) { cfg.clock = c }
}

// WithWindow sets how far back the rate and the latency quantiles look. The
// window is cut into 12 slots and slides one slot at a time, so at any
// moment it covers between 11/12 of d and d. The default is one minute. It
// panics if d is less than a second.
func WithWindow(d time.Duration) Option {
	if d < minWindow {
		panic(fmt.Sprintf("stats: WithWindow(%v): the window must be at least %v", d, minWindow))
	}
	return func(cfg *config) { cfg.window = d }
}

// WithMaxServices sets how many distinct services are counted apart. Calls
// for further services are counted under [OtherService]. The default is 256.
// It panics if n is less than 1.
func WithMaxServices(n int) Option {
	if n < 1 {
		panic(fmt.Sprintf("stats: WithMaxServices(%d): need at least 1", n))
	}
	return func(cfg *config) { cfg.maxServices = n }
}

// A Recorder keeps statistics of a proxy's calls in memory: per service,
// counts since it was created (calls by outcome, cache hits and misses, calls
// in flight) and, over a recent window, the call rate and latency quantiles.
// It implements [proxy.Observer] for [proxy.Instrumented]; read it with
// [Recorder.Snapshot].
//
// Memory is bounded: about 25 KiB per service, plus about 2.2 KiB per
// processor (GOMAXPROCS when New runs, counted up to 16), for at most
// [WithMaxServices] services, however many calls there are.
//
// A Recorder is safe for concurrent use. Use [New]; the zero value is not
// usable.
type Recorder struct {
	clock       Clock
	start       time.Time     // origin of the slot numbers
	width       time.Duration // of one slot
	maxServices int

	// stripes picks the stripe of every service that a call records in:
	// the goroutines of one processor record in one stripe.
	stripes *stripepick.Picker

	// services maps a service name to its counters. It is replaced, never
	// changed, so that the hot path reads it without a lock.
	services atomic.Pointer[map[string]*service]
	// others holds the counters of OtherService once they are needed.
	others atomic.Pointer[service]
	// mu serialises the creation of services.
	mu sync.Mutex
}

// service holds the statistics of one service. Calls are counted in
// stripes, each with counters of its own and the calls of the latest slot
// of time it saw, so that calls ending on different processors do not
// write to the same memory or take the same lock. A stripe moves its calls
// into the window's slots when a call of a later slot ends on it; a
// snapshot adds the stripes up.
type service struct {
	name    string
	stripes []stripe

	// mu guards slots. A goroutine that holds a stripe's mutex may take
	// mu, never the other way round.
	mu    sync.Mutex
	slots [numSlots]slot
}

// A stripe is one share of a service's counts.
type stripe struct {
	begun, ended atomic.Uint64
	outcomes     []atomic.Uint64 // indexed by proxy.Outcome
	hits         atomic.Uint64
	misses       atomic.Uint64

	// mu guards cur: the calls that ended on this stripe in slot cur.num,
	// not yet moved into the service's slots.
	mu  sync.Mutex
	cur slot

	_ [64]byte // keeps the next stripe's counters off this cache line
}

// slot holds the calls that ended in one slot of time.
type slot struct {
	num   int64 // the slot of time held; meaningful only when count > 0
	count uint64
	sum   time.Duration
	max   time.Duration
	hist  histogram
}

// add counts a call of duration d in s, which holds slot num or nothing.
func (s *slot) add(num int64, d time.Duration) {
	if s.count == 0 {
		s.num, s.sum, s.max = num, 0, 0
		s.hist = histogram{}
	}
	s.count++
	s.sum += d
	s.max = max(s.max, d)
	s.hist.counts[bucketOf(d)]++
}

// New returns a Recorder with no calls recorded.
func New(opts ...Option) *Recorder {
	cfg := config{clock: systemClock{}, window: defaultWindow, maxServices: defaultMaxServices}
	for _, opt := range opts {
		opt(&cfg)
	}
	r := &Recorder{
		clock:       cfg.clock,
		start:       cfg.clock.Now(),
		width:       cfg.window / numSlots,
		maxServices: cfg.maxServices,
		stripes:     stripepick.New(),
	}
	r.services.Store(&map[string]*service{})
	return r
}

// Begin counts a call for service as in flight. It implements
// [proxy.Observer] and allocates nothing once the service has been seen.
func (r *Recorder) Begin(service string) {
	r.service(service).stripes[r.stripe()].begun.Add(1)
}

// End records a finished call: it counts it under its service and outcome,
// counts a successful call as a cache hit or miss, takes it out of the calls
// in flight, and adds its duration to the window slot of the time it ended
// (o.Start plus o.Duration, or the Recorder's clock when o.Start is zero). An
// outcome outside [proxy.Outcomes] is counted as [proxy.OutcomeError]. End
// implements [proxy.Observer] and allocates nothing once the service has
// been seen.
func (r *Recorder) End(o proxy.Observation) {
	s := r.service(o.Service)
	st := &s.stripes[r.stripe()]
	i := int(o.Outcome)
	if i >= len(st.outcomes) {
		i = int(proxy.OutcomeError)
	}
	st.outcomes[i].Add(1)
	if o.Outcome == proxy.OutcomeOK {
		if o.Cached {
			st.hits.Add(1)
		} else {
			st.misses.Add(1)
		}
	}
	st.ended.Add(1)

	var end time.Time
	if o.Start.IsZero() {
		end = r.clock.Now()
	} else {
		end = o.Start.Add(o.Duration)
	}
	num := r.slotNum(end)
	d := max(o.Duration, 0)

	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.cur.count == 0 || st.cur.num == num:
	case num > st.cur.num:
		s.mu.Lock()
		s.merge(&st.cur)
		s.mu.Unlock()
		st.cur.count = 0
	default: // a call of a slot this stripe has moved past: straight to the window
		s.mu.Lock()
		s.addLate(num, d)
		s.mu.Unlock()
		return
	}
	st.cur.add(num, d)
}

// addLate adds a call of duration d that ended in slot num to the window's
// slots, unless a later slot has taken its place. s.mu must be held.
func (s *service) addLate(num int64, d time.Duration) {
	sl := &s.slots[slotIndex(num)]
	if sl.count > 0 && sl.num > num {
		return // ended before the slot's time that is kept: out of the window
	}
	if sl.num != num {
		sl.count = 0
	}
	sl.add(num, d)
}

// merge adds the calls of from, which holds one slot or nothing, to the
// window's slots, unless a later slot has taken its place. s.mu must be
// held.
func (s *service) merge(from *slot) {
	if from.count == 0 {
		return
	}
	sl := &s.slots[slotIndex(from.num)]
	if sl.count == 0 || sl.num != from.num {
		if sl.count > 0 && from.num < sl.num {
			return // ended before the slot's time that is kept: out of the window
		}
		*sl = slot{num: from.num}
	}
	sl.count += from.count
	sl.sum += from.sum
	sl.max = max(sl.max, from.max)
	for i, c := range from.hist.counts {
		sl.hist.counts[i] += c
	}
}

// inflight returns the number of calls in flight: begun and not ended.
// The stripes are read one by one, so ended is read before and after
// begun, and the difference is taken when no call ended meanwhile: it is
// then the number in flight at a moment during the reads, never more.
func (s *service) inflight() int64 {
	sum := func(ended bool) uint64 {
		var n uint64
		for i := range s.stripes {
			if ended {
				n += s.stripes[i].ended.Load()
			} else {
				n += s.stripes[i].begun.Load()
			}
		}
		return n
	}
	var begun, ended uint64
	for range 8 {
		before := sum(true)
		begun = sum(false)
		if ended = sum(true); ended == before {
			break
		}
	}
	return max(int64(begun-ended), 0)
}

// stripe returns the number of the stripe that the calling goroutine
// records in: the one its processor used last (see internal/stripe).
func (r *Recorder) stripe() int { return r.stripes.Pick() }

// slotNum returns the number of the slot of time that t falls in.
func (r *Recorder) slotNum(t time.Time) int64 {
	d := t.Sub(r.start)
	n := int64(d / r.width)
	if d < 0 && d%r.width != 0 {
		n-- // round towards minus infinity
	}
	return n
}

// slotIndex returns where slot number num is kept.
func slotIndex(num int64) int {
	i := num % numSlots
	if i < 0 {
		i += numSlots
	}
	return int(i)
}

// service returns the counters of name, creating them on first use.
func (r *Recorder) service(name string) *service {
	services := *r.services.Load()
	if s, ok := services[name]; ok {
		return s
	}
	if len(services) >= r.maxServices {
		if o := r.others.Load(); o != nil {
			return o
		}
	}
	return r.newService(name)
}

func (r *Recorder) newService(name string) *service {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.services.Load()
	if s, ok := old[name]; ok {
		return s
	}
	if len(old) >= r.maxServices {
		if o := r.others.Load(); o != nil {
			return o
		}
		o := newService(OtherService, r.stripes.N())
		r.others.Store(o)
		return o
	}
	s := newService(name, r.stripes.N())
	next := make(map[string]*service, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = s
	r.services.Store(&next)
	return s
}

func newService(name string, stripes int) *service {
	s := &service{name: name, stripes: make([]stripe, stripes)}
	for i := range s.stripes {
		s.stripes[i].outcomes = make([]atomic.Uint64, len(proxy.Outcomes()))
	}
	return s
}

var _ proxy.Observer = (*Recorder)(nil)
