package stats

import (
	"slices"
	"strings"
	"time"

	"github.com/proxykit/proxy"
)

// A Snapshot is the state of a [Recorder] at one moment, ready to be encoded
// as JSON. Durations are in nanoseconds in JSON, as the _ns suffixes say.
type Snapshot struct {
	// Time is when the snapshot was taken, by the Recorder's clock.
	Time time.Time `json:"time"`
	// Window is how far back Rate and Latency look: the full window, even
	// when the Recorder is younger than that.
	Window time.Duration `json:"window_ns"`
	// Total sums every service. Its Service is empty, and its latency is
	// that of all the calls in the window together.
	Total ServiceStats `json:"total"`
	// Services holds one entry per service seen, sorted by name.
	Services []ServiceStats `json:"services"`
}

// Service returns the statistics of the named service, and reports whether
// the snapshot has it.
func (s *Snapshot) Service(name string) (ServiceStats, bool) {
	i, ok := slices.BinarySearchFunc(s.Services, name, func(st ServiceStats, name string) int {
		return strings.Compare(st.Service, name)
	})
	if !ok {
		return ServiceStats{}, false
	}
	return s.Services[i], true
}

// ServiceStats are the statistics of one service. The counts cover the life
// of the Recorder; Rate and Latency cover the window. Each count is read
// atomically, but the counts are not read all at one instant: under load,
// Requests may be a call or two ahead of the sum of the cache counts.
type ServiceStats struct {
	// Service is the service's name.
	Service string `json:"service"`
	// Requests counts the calls that have ended.
	Requests uint64 `json:"requests"`
	// InFlight counts the calls that have begun and not ended.
	InFlight int64 `json:"in_flight"`
	// Outcomes counts the calls that have ended by outcome: one entry for
	// each of [proxy.Outcomes], keyed by its String.
	Outcomes map[string]uint64 `json:"outcomes"`
	// CacheHits counts the successful calls answered from a cache.
	CacheHits uint64 `json:"cache_hits"`
	// CacheMisses counts the successful calls answered by the service.
	CacheMisses uint64 `json:"cache_misses"`
	// Rate is the calls per second that ended in the window.
	Rate float64 `json:"rate"`
	// Latency describes the durations of the calls that ended in the
	// window.
	Latency Latency `json:"latency"`
}

// Latency describes the durations of the calls that ended in a window. The
// quantiles come from a log-linear histogram and are within [QuantileError]
// (3.125%) of the exact nearest-rank quantile of those durations; Count,
// Mean and Max are exact.
type Latency struct {
	// Count is how many calls ended in the window.
	Count uint64 `json:"count"`
	// Mean is their mean duration.
	Mean time.Duration `json:"mean_ns"`
	// P50 is their median duration.
	P50 time.Duration `json:"p50_ns"`
	// P90 is their 90th percentile duration.
	P90 time.Duration `json:"p90_ns"`
	// P99 is their 99th percentile duration.
	P99 time.Duration `json:"p99_ns"`
	// Max is their longest duration.
	Max time.Duration `json:"max_ns"`
}

// window is the part of the slots that a snapshot reads.
type window struct {
	first, last int64         // slot numbers, inclusive
	elapsed     time.Duration // the time they cover, up to now
}

// Snapshot returns the statistics of every service seen and their total.
func (r *Recorder) Snapshot() Snapshot {
	now := r.clock.Now()
	w := r.window(now)
	snap := Snapshot{Time: now, Window: r.width * numSlots, Total: ServiceStats{Outcomes: outcomeMap()}}

	services := r.all()
	snap.Services = make([]ServiceStats, 0, len(services))
	var (
		total   merged
		totals  windowTotals
		outcome = make([]uint64, len(proxy.Outcomes()))
	)
	for _, s := range services {
		var m merged
		st, wt := s.stats(&m, w)
		snap.Services = append(snap.Services, st)
		total.addMerged(&m)
		totals.add(wt)
		snap.Total.Requests += st.Requests
		snap.Total.InFlight += st.InFlight
		snap.Total.CacheHits += st.CacheHits
		snap.Total.CacheMisses += st.CacheMisses
		for i, o := range proxy.Outcomes() {
			outcome[i] += st.Outcomes[o.String()]
		}
	}
	for i, o := range proxy.Outcomes() {
		snap.Total.Outcomes[o.String()] = outcome[i]
	}
	snap.Total.Rate, snap.Total.Latency = totals.summary(&total, w)
	return snap
}

// Service returns the statistics of the named service, and reports whether
// it has been seen. It costs less than a whole Snapshot.
func (r *Recorder) Service(name string) (ServiceStats, bool) {
	var s *service
	if s = (*r.services.Load())[name]; s == nil {
		if s = r.others.Load(); s == nil || name != OtherService {
			return ServiceStats{}, false
		}
	}
	var m merged
	st, _ := s.stats(&m, r.window(r.clock.Now()))
	return st, true
}

// window returns the slots that make up the window at now.
func (r *Recorder) window(now time.Time) window {
	last := r.slotNum(now)
	first := last - numSlots + 1
	from := r.start.Add(time.Duration(first) * r.width)
	if from.Before(r.start) {
		from = r.start
	}
	return window{first: first, last: last, elapsed: now.Sub(from)}
}

// all returns every service, sorted by name.
func (r *Recorder) all() []*service {
	services := *r.services.Load()
	all := make([]*service, 0, len(services)+1)
	for _, s := range services {
		all = append(all, s)
	}
	if o := r.others.Load(); o != nil {
		all = append(all, o)
	}
	slices.SortFunc(all, func(a, b *service) int { return strings.Compare(a.name, b.name) })
	return all
}

// windowTotals sums the slots of a window.
type windowTotals struct {
	count uint64
	sum   time.Duration
	max   time.Duration
}

func (t *windowTotals) add(o windowTotals) {
	t.count += o.count
	t.sum += o.sum
	t.max = max(t.max, o.max)
}

// summary returns the rate and latency of the calls summed in t, whose
// histogram is m.
func (t windowTotals) summary(m *merged, w window) (float64, Latency) {
	lat := Latency{Count: t.count, Max: t.max}
	if t.count > 0 {
		lat.Mean = t.sum / time.Duration(t.count)
		lat.P50 = m.quantile(0.50, t.count, t.max)
		lat.P90 = m.quantile(0.90, t.count, t.max)
		lat.P99 = m.quantile(0.99, t.count, t.max)
	}
	var rate float64
	if w.elapsed > 0 {
		rate = float64(t.count) / w.elapsed.Seconds()
	}
	return rate, lat
}

// stats returns the statistics of s, summing the histograms of the window's
// slots into m, and the window's totals.
func (s *service) stats(m *merged, w window) (ServiceStats, windowTotals) {
	st := ServiceStats{
		Service:  s.name,
		InFlight: s.inflight(),
		Outcomes: outcomeMap(),
	}
	outcomes := make([]uint64, len(proxy.Outcomes()))
	for i := range s.stripes {
		x := &s.stripes[i]
		st.CacheHits += x.hits.Load()
		st.CacheMisses += x.misses.Load()
		for o := range outcomes {
			outcomes[o] += x.outcomes[o].Load()
		}
	}
	for i, o := range proxy.Outcomes() {
		st.Outcomes[o.String()] = outcomes[i]
		st.Requests += outcomes[i]
	}

	var t windowTotals
	add := func(sl *slot) {
		if sl.count == 0 || sl.num < w.first || sl.num > w.last {
			return
		}
		m.add(&sl.hist)
		t.add(windowTotals{count: sl.count, sum: sl.sum, max: sl.max})
	}
	// Every stripe's mutex and then the service's, in the order End takes
	// them, so that no call is seen both in a stripe and in the window or
	// in neither.
	for i := range s.stripes {
		s.stripes[i].mu.Lock()
	}
	s.mu.Lock()
	for i := range s.slots {
		add(&s.slots[i])
	}
	for i := range s.stripes {
		add(&s.stripes[i].cur)
	}
	s.mu.Unlock()
	for i := range s.stripes {
		s.stripes[i].mu.Unlock()
	}

	st.Rate, st.Latency = t.summary(m, w)
	return st, t
}

func outcomeMap() map[string]uint64 {
	return make(map[string]uint64, len(proxy.Outcomes()))
}
