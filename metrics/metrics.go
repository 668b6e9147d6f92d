package metrics

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proxykit/proxy"
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
	requests  *prometheus.CounterVec
	durations *prometheus.HistogramVec
	inflight  *prometheus.GaugeVec
	hits      *prometheus.CounterVec
	misses    *prometheus.CounterVec
	retries   *prometheus.CounterVec
	breaker   *prometheus.GaugeVec
	healthy   *prometheus.GaugeVec
	all       []prometheus.Collector

	maxServices int

	// services maps a service name to its series. It is replaced, never
	// changed, so that the hot path reads it without a lock.
	services atomic.Pointer[map[string]*series]
	// others holds the series of OtherService once they are needed.
	others atomic.Pointer[series]
	// mu serialises the creation of series.
	mu sync.Mutex
}

// series holds the children of the vectors for one service label, resolved
// once so that recording a call costs no label lookup.
type series struct {
	label     string
	inflight  prometheus.Gauge
	requests  []prometheus.Counter  // indexed by proxy.Outcome
	durations []prometheus.Observer // indexed by proxy.Outcome
	hits      prometheus.Counter
	misses    prometheus.Counter
}

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
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "requests_total",
			Help: "Calls that passed through the proxy, by service and outcome.",
		}, []string{"service", "outcome"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "request_duration_seconds",
			Help:    "Time the proxy took to answer a call, by service and outcome.",
			Buckets: cfg.buckets,
		}, []string{"service", "outcome"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "inflight_requests",
			Help: "Calls the proxy is processing now, by service.",
		}, []string{"service"}),
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_hits_total",
			Help: "Successful calls answered from the cache, by service.",
		}, []string{"service"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_misses_total",
			Help: "Successful calls answered by the service itself, by service.",
		}, []string{"service"}),
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
	}
	m.all = []prometheus.Collector{m.requests, m.durations, m.inflight, m.hits, m.misses, m.retries, m.breaker, m.healthy}
	m.services.Store(&map[string]*series{})
	if err := reg.Register(m); err != nil {
		panic("metrics: New: " + err.Error())
	}
	return m
}

// Describe sends the descriptors of every metric of m to ch. It implements
// [prometheus.Collector].
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all {
		c.Describe(ch)
	}
}

// Collect sends every metric of m to ch. It implements
// [prometheus.Collector].
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all {
		c.Collect(ch)
	}
}

// Begin counts a call for service as in flight. It implements
// [proxy.Observer] and allocates nothing once the service has been seen.
func (m *Metrics) Begin(service string) {
	m.series(service).inflight.Inc()
}

// End records a finished call: it counts it under its service and outcome,
// observes its duration, counts a successful call as a cache hit or miss, and
// takes it out of the in-flight gauge. An outcome outside [proxy.Outcomes] is
// counted as [proxy.OutcomeError]. End implements [proxy.Observer] and
// allocates nothing once the service has been seen.
func (m *Metrics) End(o proxy.Observation) {
	s := m.series(o.Service)
	s.inflight.Dec()
	i := int(o.Outcome)
	if i >= len(s.requests) {
		i = int(proxy.OutcomeError)
	}
	s.requests[i].Inc()
	s.durations[i].Observe(o.Duration.Seconds())
	if o.Outcome == proxy.OutcomeOK {
		if o.Cached {
			s.hits.Inc()
		} else {
			s.misses.Inc()
		}
	}
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
	outcomes := proxy.Outcomes()
	s := &series{
		label:     label,
		inflight:  m.inflight.WithLabelValues(label),
		requests:  make([]prometheus.Counter, len(outcomes)),
		durations: make([]prometheus.Observer, len(outcomes)),
		hits:      m.hits.WithLabelValues(label),
		misses:    m.misses.WithLabelValues(label),
	}
	for i, o := range outcomes {
		s.requests[i] = m.requests.WithLabelValues(label, o.String())
		s.durations[i] = m.durations.WithLabelValues(label, o.String())
	}
	return s
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
