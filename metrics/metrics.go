package metrics

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/internal/stripe"
)

// OtherService is the service label that calls are counted under once
// [WithMaxServices] distinct services have been seen, so that a flood of
// made-up service names cannot create unbounded series.
const OtherService = "_other"

const (
	defaultMaxServices = 256
	namespace          = "proxy"
)

// An Option configures [New].
type Option func(*config)

type config struct {
	buckets     []float64
	maxServices int
}

// WithBuckets sets the upper bounds, in seconds, of the buckets of
// proxy_request_duration_seconds. The default is [prometheus.DefBuckets],
// 5ms to 10s. It panics unless the bounds are non-empty and strictly
// increasing.
func WithBuckets(bounds ...float64) Option {
	if len(bounds) == 0 {
		panic("metrics: WithBuckets of no bucket")
	}
	for i := 1; i < len(bounds); i++ {
		if !(bounds[i] > bounds[i-1]) {
			panic(fmt.Sprintf("metrics: WithBuckets(%v): bounds must be strictly increasing", bounds))
		}
	}
	bounds = slices.Clone(bounds)
	return func(c *config) { c.buckets = bounds }
}

// WithMaxServices sets how many distinct service labels are kept. Calls for
// further services are counted under [OtherService]. The default is 256. It
// panics if n is less than 1.
func WithMaxServices(n int) Option {
	if n < 1 {
		panic(fmt.Sprintf("metrics: WithMaxServices(%d): need at least 1", n))
	}
	return func(c *config) { c.maxServices = n }
}

// Metrics records the calls of a proxy as Prometheus metrics. It implements
// [proxy.Observer] for [proxy.Instrumented], and has methods that the layers'
// events (breaker state changes, retries, instance health) can be reported
// to. It is itself a [prometheus.Collector], registered by [New].
//
// The metrics, all labelled by service:
//
//	proxy_requests_total{service,outcome}            counter
//	proxy_request_duration_seconds{service,outcome}  histogram
//	proxy_inflight_requests{service}                 gauge
//	proxy_cache_hits_total{service}                  counter
//	proxy_cache_misses_total{service}                counter
//	proxy_retries_total{service}                     counter
//	proxy_breaker_state{service}                     gauge: 0 closed, 1 half-open, 2 open
//	proxy_instance_healthy{service,instance}         gauge: 1 healthy, 0 not
//
// The outcome label takes the values of [proxy.Outcome], a closed set; a
// rate-limited call is proxy_requests_total{outcome="rate_limited"}. The
// first call for a service creates its series for every outcome, so that
// rates and ratios are defined from the start.
//
// A Metrics is safe for concurrent use. Use [New]; the zero value is not
// usable.
type Metrics struct {
	// The descriptions of the metrics of calls, which Metrics counts itself
	// (see series) and exports when collected.
	requests, durations, inflight, hits, misses *prometheus.Desc
	// bounds are the upper bounds of the duration buckets, in seconds.
	bounds []float64

	retries *prometheus.CounterVec
	breaker *prometheus.GaugeVec
	healthy *prometheus.GaugeVec
	all     []prometheus.Collector // the vectors above

	maxServices int
	// stripes picks the stripe of every series that a call records in:
	// the goroutines of one processor record in one stripe.
	stripes *stripe.Picker

	// services maps a service name to its series. It is replaced, never
	// changed, so that the hot path reads it without a lock.
	services atomic.Pointer[map[string]*series]
	// others holds the series of OtherService once they are needed.
	others atomic.Pointer[series]
	// mu serialises the creation of series.
	mu sync.Mutex
}

// series holds the counts of the calls of one service label. The counts
// are striped: each stripe has cells of every count, and a call records in
// the stripe of the processor it runs on, so that calls on different
// processors do not write to the same cache lines. A scrape adds the
// stripes up.
//
// A stripe is stride cells: begun, ended, hits and misses, then for each
// outcome the calls in each duration bucket (the last for durations above
// every bound) and the sum of their durations in nanoseconds (as an
// int64's bits), padded to whole cache lines.
type series struct {
	label   string
	created time.Time
	stride  int
	cells   []atomic.Uint64
}

// The cells of a stripe.
const (
	cellBegun = iota
	cellEnded
	cellHits
	cellMisses
	cellOutcomes // the first cell of the first outcome
)

// cellsPerLine is the number of cells in a 64-byte cache line.
const cellsPerLine = 8

// New returns a Metrics registered on reg; it never touches the global
// registry. To prefix the names or add constant labels, wrap reg with
// [prometheus.WrapRegistererWithPrefix] or [prometheus.WrapRegistererWith].
// New panics if reg is nil or the registration fails (for example because
// reg already holds metrics of the same names), as
// [prometheus.Registerer.MustRegister] does.
func New(reg prometheus.Registerer, opts ...Option) *Metrics {
	if reg == nil {
		panic("metrics: New with a nil Registerer")
	}
	cfg := config{buckets: prometheus.DefBuckets, maxServices: defaultMaxServices}
	for _, opt := range opts {
		opt(&cfg)
	}
	name := func(n string) string { return prometheus.BuildFQName(namespace, "", n) }
	m := &Metrics{
		requests: prometheus.NewDesc(name("requests_total"),
			"Calls that passed through the proxy, by service and outcome.", []string{"service", "outcome"}, nil),
		durations: prometheus.NewDesc(name("request_duration_seconds"),
			"Time the proxy took to answer a call, by service and outcome.", []string{"service", "outcome"}, nil),
		inflight: prometheus.NewDesc(name("inflight_requests"),
			"Calls the proxy is processing now, by service.", []string{"service"}, nil),
		hits: prometheus.NewDesc(name("cache_hits_total"),
			"Successful calls answered from the cache, by service.", []string{"service"}, nil),
		misses: prometheus.NewDesc(name("cache_misses_total"),
			"Successful calls answered by the service itself, by service.", []string{"service"}, nil),
		bounds: cfg.buckets,
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "retries_total",
			Help: "Attempts repeated by the retry layer, by service.",
		}, []string{"service"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "breaker_state",
			Help: "State of the service's circuit breaker: 0 closed, 1 half-open, 2 open.",
		}, []string{"service"}),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "instance_healthy",
			Help: "Whether an instance of the service may take calls: 1 healthy, 0 not.",
		}, []string{"service", "instance"}),
		maxServices: cfg.maxServices,
		stripes:     stripe.New(),
	}
	if n := len(m.bounds); n > 0 && math.IsInf(m.bounds[n-1], 1) {
		m.bounds = m.bounds[:n-1] // +Inf is the implicit last bucket, as for prometheus.Histogram
	}
	m.all = []prometheus.Collector{m.retries, m.breaker, m.healthy}
	m.services.Store(&map[string]*series{})
	if err := reg.Register(m); err != nil {
		panic("metrics: New: " + err.Error())
	}
	return m
}

// Describe sends the descriptors of every metric of m to ch. It implements
// [prometheus.Collector].
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.requests, m.durations, m.inflight, m.hits, m.misses} {
		ch <- d
	}
	for _, c := range m.all {
		c.Describe(ch)
	}
}

// Collect sends every metric of m to ch. It implements
// [prometheus.Collector].
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	all := *m.services.Load()
	for _, s := range all {
		m.collectSeries(ch, s)
	}
	if o := m.others.Load(); o != nil {
		m.collectSeries(ch, o)
	}
	for _, c := range m.all {
		c.Collect(ch)
	}
}

// collectSeries sends the metrics of the calls of s, adding up its stripes.
func (m *Metrics) collectSeries(ch chan<- prometheus.Metric, s *series) {
	sum := func(cell int) uint64 {
		var n uint64
		for i := range m.stripes.N() {
			n += s.stripe(i)[cell].Load()
		}
		return n
	}
	// The stripes are read one by one, so ended is read before and after
	// begun, and the difference is taken when no call ended meanwhile: it
	// is then the number in flight at a moment during the reads.
	var begun, ended uint64
	for range 8 {
		before := sum(cellEnded)
		begun = sum(cellBegun)
		if ended = sum(cellEnded); ended == before {
			break
		}
	}
	ch <- prometheus.MustNewConstMetric(m.inflight, prometheus.GaugeValue, float64(max(int64(begun-ended), 0)), s.label)
	ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(m.hits, prometheus.CounterValue, float64(sum(cellHits)), s.created, s.label)
	ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(m.misses, prometheus.CounterValue, float64(sum(cellMisses)), s.created, s.label)
	for _, o := range proxy.Outcomes() {
		first := m.outcomeCell(o)
		var count uint64
		buckets := make(map[float64]uint64, len(m.bounds))
		for b, bound := range m.bounds {
			count += sum(first + b)
			buckets[bound] = count
		}
		count += sum(first + len(m.bounds))
		seconds := float64(int64(sum(first+len(m.bounds)+1))) / float64(time.Second)
		ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(m.requests, prometheus.CounterValue, float64(count), s.created, s.label, o.String())
		ch <- prometheus.MustNewConstHistogramWithCreatedTimestamp(m.durations, count, seconds, buckets, s.created, s.label, o.String())
	}
}

// outcomeCell returns the first cell of outcome o in a stripe.
func (m *Metrics) outcomeCell(o proxy.Outcome) int {
	return cellOutcomes + int(o)*(len(m.bounds)+2)
}

// Begin counts a call for service as in flight. It implements
// [proxy.Observer] and allocates nothing once the service has been seen.
func (m *Metrics) Begin(service string) {
	m.series(service).stripe(m.stripe())[cellBegun].Add(1)
}

// End records a finished call: it counts it under its service and outcome,
// observes its duration, counts a successful call as a cache hit or miss, and
// takes it out of the in-flight gauge. An outcome outside [proxy.Outcomes] is
// counted as [proxy.OutcomeError]. End implements [proxy.Observer] and
// allocates nothing once the service has been seen.
func (m *Metrics) End(o proxy.Observation) {
	cells := m.series(o.Service).stripe(m.stripe())
	outcome := o.Outcome
	if int(outcome) >= len(proxy.Outcomes()) {
		outcome = proxy.OutcomeError
	}
	first := m.outcomeCell(outcome)
	// The bucket is found as prometheus.Histogram finds it: the first
	// bound the duration in seconds does not exceed.
	seconds := o.Duration.Seconds()
	b := 0
	for b < len(m.bounds) && seconds > m.bounds[b] {
		b++
	}
	cells[first+b].Add(1)
	cells[first+len(m.bounds)+1].Add(uint64(o.Duration))
	if outcome == proxy.OutcomeOK {
		if o.Cached {
			cells[cellHits].Add(1)
		} else {
			cells[cellMisses].Add(1)
		}
	}
	cells[cellEnded].Add(1)
}

// stripe returns the number of the stripe that the calling goroutine
// records in: the one its processor used last (see internal/stripe).
func (m *Metrics) stripe() int { return m.stripes.Pick() }

// stripe returns the cells of stripe i. The stripes come after a line of
// padding.
func (s *series) stripe(i int) []atomic.Uint64 {
	base := cellsPerLine + i*s.stride
	return s.cells[base : base+s.stride : base+s.stride]
}

// series returns the series of service, creating them on first use.
func (m *Metrics) series(service string) *series {
	services := *m.services.Load()
	if s, ok := services[service]; ok {
		return s
	}
	if len(services) >= m.maxServices {
		if o := m.others.Load(); o != nil {
			return o
		}
	}
	return m.newSeries(service)
}

func (m *Metrics) newSeries(service string) *series {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.services.Load()
	if s, ok := old[service]; ok {
		return s
	}
	if len(old) >= m.maxServices {
		if o := m.others.Load(); o != nil {
			return o
		}
		o := m.makeSeries(OtherService)
		m.others.Store(o)
		return o
	}
	s := m.makeSeries(labelValue(service))
	next := make(map[string]*series, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[service] = s
	m.services.Store(&next)
	return s
}

// label returns the label value that events for service are recorded under:
// the service's own while it has series or there is room for more, else
// [OtherService].
func (m *Metrics) label(service string) string {
	return m.series(service).label
}

func (m *Metrics) makeSeries(label string) *series {
	cells := m.outcomeCell(proxy.Outcome(len(proxy.Outcomes())))
	stride := (cells + cellsPerLine - 1) / cellsPerLine * cellsPerLine
	return &series{
		label:   label,
		created: time.Now(), // as client_golang stamps a new series
		stride:  stride,
		// A line of padding before and after the stripes, so that they
		// share no cache line with what the allocator puts around them.
		cells: make([]atomic.Uint64, cellsPerLine+m.stripes.N()*stride+cellsPerLine),
	}
}

// labelValue makes v usable as a label value, which Prometheus requires to
// be valid UTF-8.
func labelValue(v string) string {
	return strings.ToValidUTF8(v, string(utf8.RuneError))
}

var (
	_ proxy.Observer       = (*Metrics)(nil)
	_ prometheus.Collector = (*Metrics)(nil)
)
