package stats

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxykit/proxy"
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
// Memory is bounded: about 25 KiB per service, for at most [WithMaxServices]
// services, however many calls there are.
//
// A Recorder is safe for concurrent use. Use [New]; the zero value is not
// usable.
type Recorder struct {
	clock       Clock
	start       time.Time     // origin of the slot numbers
	width       time.Duration // of one slot
	maxServices int

	// services maps a service name to its counters. It is replaced, never
	// changed, so that the hot path reads it without a lock.
	services atomic.Pointer[map[string]*service]
	// others holds the counters of OtherService once they are needed.
	others atomic.Pointer[service]
	// mu serialises the creation of services.
	mu sync.Mutex
}

// service holds the statistics of one service.
type service struct {
	name     string
	inflight atomic.Int64
	outcomes []atomic.Uint64 // indexed by proxy.Outcome
	hits     atomic.Uint64
	misses   atomic.Uint64

	// mu guards slots.
	mu    sync.Mutex
	slots [numSlots]slot
}

// slot holds the calls that ended in one slot of time.
type slot struct {
	num   int64 // the slot of time held; meaningful only when count > 0
	count uint64
	sum   time.Duration
	max   time.Duration
	hist  histogram
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
	}
	r.services.Store(&map[string]*service{})
	return r
}

// Begin counts a call for service as in flight. It implements
// [proxy.Observer] and allocates nothing once the service has been seen.
func (r *Recorder) Begin(service string) {
	r.service(service).inflight.Add(1)
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
	s.inflight.Add(-1)
	i := int(o.Outcome)
	if i >= len(s.outcomes) {
		i = int(proxy.OutcomeError)
	}
	s.outcomes[i].Add(1)
	if o.Outcome == proxy.OutcomeOK {
		if o.Cached {
			s.hits.Add(1)
		} else {
			s.misses.Add(1)
		}
	}

	var end time.Time
	if o.Start.IsZero() {
		end = r.clock.Now()
	} else {
		end = o.Start.Add(o.Duration)
	}
	num := r.slotNum(end)
	d := max(o.Duration, 0)

	s.mu.Lock()
	defer s.mu.Unlock()
	sl := &s.slots[slotIndex(num)]
	if sl.count == 0 || sl.num != num {
		if sl.count > 0 && num < sl.num {
			return // ended before the slot's time that is kept: out of the window
		}
		*sl = slot{num: num}
	}
	sl.count++
	sl.sum += d
	sl.max = max(sl.max, d)
	sl.hist.counts[bucketOf(d)]++
}

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
		o := newService(OtherService)
		r.others.Store(o)
		return o
	}
	s := newService(name)
	next := make(map[string]*service, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = s
	r.services.Store(&next)
	return s
}

func newService(name string) *service {
	return &service{name: name, outcomes: make([]atomic.Uint64, len(proxy.Outcomes()))}
}

var _ proxy.Observer = (*Recorder)(nil)
