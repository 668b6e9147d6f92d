package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/internal/clocktest"
	"github.com/proxykit/proxy/metrics"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// kind is one of the results a scriptedBackend can answer with.
type kind int

const (
	fresh kind = iota
	cacheHit
	failure
	rateLimited
	circuitOpen
	noInstance
	timedOut
	invalid
	numKinds
)

// result returns the answer of kind k and the outcome it should be counted
// under.
func (k kind) result() (*proxy.Response, proxy.Outcome, error) {
	switch k {
	case fresh:
		return &proxy.Response{RequestID: "r"}, proxy.OutcomeOK, nil
	case cacheHit:
		return &proxy.Response{RequestID: "r", Cached: true}, proxy.OutcomeOK, nil
	case failure:
		return nil, proxy.OutcomeError, errors.New("card declined")
	case rateLimited:
		return nil, proxy.OutcomeRateLimited, &proxy.RateLimitError{Key: "alice", RetryAfter: time.Second}
	case circuitOpen:
		return nil, proxy.OutcomeCircuitOpen, fmt.Errorf("%w: gobreaker: circuit breaker is open", proxy.ErrCircuitOpen)
	case noInstance:
		return nil, proxy.OutcomeNoHealthyInstance, proxy.ErrNoHealthyInstance
	case timedOut:
		return nil, proxy.OutcomeTimeout, fmt.Errorf("attempt: %w", context.DeadlineExceeded)
	case invalid:
		return nil, proxy.OutcomeInvalid, &proxy.InvalidRequestError{Field: "user_id", Reason: "missing"}
	}
	panic("unknown kind")
}

// scriptedBackend answers each call with the kind that pick chooses for it,
// and counts what it answered, by service and outcome.
type scriptedBackend struct {
	pick func(n int) kind

	mu     sync.Mutex
	calls  int
	counts map[string]map[proxy.Outcome]int
	hits   map[string]int
	misses map[string]int
}

func newScriptedBackend(pick func(n int) kind) *scriptedBackend {
	return &scriptedBackend{
		pick:   pick,
		counts: map[string]map[proxy.Outcome]int{},
		hits:   map[string]int{},
		misses: map[string]int{},
	}
}

func (b *scriptedBackend) Process(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	resp, out, err := b.pick(b.calls).result()
	b.calls++
	if b.counts[req.Service] == nil {
		b.counts[req.Service] = map[proxy.Outcome]int{}
	}
	b.counts[req.Service][out]++
	if out == proxy.OutcomeOK {
		if resp.Cached {
			b.hits[req.Service]++
		} else {
			b.misses[req.Service]++
		}
	}
	return resp, err
}

// exposition returns what m should expose for the calls b answered, in the
// text format, for the named metrics.
func (b *scriptedBackend) exposition() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	services := make([]string, 0, len(b.counts))
	for s := range b.counts {
		services = append(services, s)
	}
	slices.Sort(services)
	var sb strings.Builder
	sb.WriteString("# HELP proxy_requests_total Calls that passed through the proxy, by service and outcome.\n")
	sb.WriteString("# TYPE proxy_requests_total counter\n")
	for _, s := range services {
		for _, o := range proxy.Outcomes() {
			fmt.Fprintf(&sb, "proxy_requests_total{outcome=%q,service=%q} %d\n", o, s, b.counts[s][o])
		}
	}
	sb.WriteString("# HELP proxy_cache_hits_total Successful calls answered from the cache, by service.\n")
	sb.WriteString("# TYPE proxy_cache_hits_total counter\n")
	for _, s := range services {
		fmt.Fprintf(&sb, "proxy_cache_hits_total{service=%q} %d\n", s, b.hits[s])
	}
	sb.WriteString("# HELP proxy_cache_misses_total Successful calls answered by the service itself, by service.\n")
	sb.WriteString("# TYPE proxy_cache_misses_total counter\n")
	for _, s := range services {
		fmt.Fprintf(&sb, "proxy_cache_misses_total{service=%q} %d\n", s, b.misses[s])
	}
	sb.WriteString("# HELP proxy_inflight_requests Calls the proxy is processing now, by service.\n")
	sb.WriteString("# TYPE proxy_inflight_requests gauge\n")
	for _, s := range services {
		fmt.Fprintf(&sb, "proxy_inflight_requests{service=%q} 0\n", s)
	}
	return sb.String()
}

// one is a Collector of the single series of m named name whose labels
// include labels, so that testutil.ToFloat64 can read it.
type one struct {
	m      *metrics.Metrics
	name   string
	labels map[string]string
}

func (o one) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(o, ch) }

func (o one) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() {
		o.m.Collect(all)
		close(all)
	}()
	for mt := range all {
		if !strings.Contains(mt.Desc().String(), fmt.Sprintf("fqName: %q", o.name)) {
			continue
		}
		var d dto.Metric
		if err := mt.Write(&d); err != nil {
			panic(err)
		}
		matched := 0
		for _, lp := range d.GetLabel() {
			if v, ok := o.labels[lp.GetName()]; ok && v == lp.GetValue() {
				matched++
			}
		}
		if matched == len(o.labels) {
			ch <- mt
		}
	}
}

// value returns the value of the series of m named name with labels, given as
// name-value pairs.
func value(m *metrics.Metrics, name string, labels ...string) float64 {
	o := one{m: m, name: name, labels: map[string]string{}}
	for i := 0; i+1 < len(labels); i += 2 {
		o.labels[labels[i]] = labels[i+1]
	}
	return testutil.ToFloat64(o)
}

func lint(t *testing.T, reg prometheus.Gatherer) {
	t.Helper()
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatalf("GatherAndLint() error = %v", err)
	}
	for _, p := range problems {
		t.Errorf("GatherAndLint(): %s: %s", p.Metric, p.Text)
	}
}

func TestMixedRunMatchesBackend(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	// An irregular mix: every kind occurs, in different numbers.
	backend := newScriptedBackend(func(n int) kind { return kind((n*n + n/3) % int(numKinds)) })
	svc := proxy.Chain(backend, proxy.Instrumented(m))
	for i := range 300 {
		service := []string{"payment", "user", "inventory"}[i%3]
		_, _ = svc.Process(t.Context(), &proxy.Request{ID: fmt.Sprint(i), UserID: "alice", Service: service})
	}

	for service, byOutcome := range backend.counts {
		for _, o := range proxy.Outcomes() {
			got := value(m, "proxy_requests_total", "service", service, "outcome", o.String())
			if want := float64(byOutcome[o]); got != want {
				t.Errorf("proxy_requests_total{service=%q,outcome=%q} = %v, want %v", service, o, got, want)
			}
		}
		if got, want := value(m, "proxy_cache_hits_total", "service", service), float64(backend.hits[service]); got != want {
			t.Errorf("proxy_cache_hits_total{service=%q} = %v, want %v", service, got, want)
		}
	}
	for k := range numKinds {
		_, o, _ := k.result()
		total := 0
		for _, byOutcome := range backend.counts {
			total += byOutcome[o]
		}
		if total == 0 {
			t.Errorf("the mix has no call of outcome %v", o)
		}
	}
	err := testutil.CollectAndCompare(m, strings.NewReader(backend.exposition()),
		"proxy_requests_total", "proxy_cache_hits_total", "proxy_cache_misses_total", "proxy_inflight_requests")
	if err != nil {
		t.Errorf("CollectAndCompare() = %v", err)
	}
	if n := testutil.CollectAndCount(m, "proxy_request_duration_seconds"); n != 3*len(proxy.Outcomes()) {
		t.Errorf("CollectAndCount(proxy_request_duration_seconds) = %d, want %d", n, 3*len(proxy.Outcomes()))
	}
	lint(t, reg)
}

func TestDurationHistogram(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg, metrics.WithBuckets(0.1, 1))
	clk := clocktest.New(t0)
	took := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second}
	calls := 0
	backend := proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		clk.Advance(took[calls])
		calls++
		return &proxy.Response{}, nil
	})
	svc := proxy.Chain(backend, proxy.Instrumented(m, proxy.WithInstrumentedClock(clk)))
	for range took {
		_, _ = svc.Process(t.Context(), &proxy.Request{ID: "r", UserID: "u", Service: "payment"})
	}

	var want strings.Builder
	want.WriteString("# HELP proxy_request_duration_seconds Time the proxy took to answer a call, by service and outcome.\n")
	want.WriteString("# TYPE proxy_request_duration_seconds histogram\n")
	for _, o := range proxy.Outcomes() {
		b1, b2, sum, count := 0, 0, "0", 0
		if o == proxy.OutcomeOK {
			b1, b2, sum, count = 2, 3, "2.65", 4
		}
		fmt.Fprintf(&want, "proxy_request_duration_seconds_bucket{outcome=%q,service=\"payment\",le=\"0.1\"} %d\n", o, b1)
		fmt.Fprintf(&want, "proxy_request_duration_seconds_bucket{outcome=%q,service=\"payment\",le=\"1\"} %d\n", o, b2)
		fmt.Fprintf(&want, "proxy_request_duration_seconds_bucket{outcome=%q,service=\"payment\",le=\"+Inf\"} %d\n", o, count)
		fmt.Fprintf(&want, "proxy_request_duration_seconds_sum{outcome=%q,service=\"payment\"} %s\n", o, sum)
		fmt.Fprintf(&want, "proxy_request_duration_seconds_count{outcome=%q,service=\"payment\"} %d\n", o, count)
	}
	if err := testutil.CollectAndCompare(m, strings.NewReader(want.String()), "proxy_request_duration_seconds"); err != nil {
		t.Errorf("CollectAndCompare() = %v", err)
	}
	lint(t, reg)
}

func TestInflightGauge(t *testing.T) {
	m := metrics.New(prometheus.NewPedanticRegistry())
	entered := make(chan struct{})
	release := make(chan struct{})
	backend := proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		entered <- struct{}{}
		<-release
		return &proxy.Response{}, nil
	})
	svc := proxy.Chain(backend, proxy.Instrumented(m))
	const calls = 3
	var wg sync.WaitGroup
	for range calls {
		wg.Go(func() {
			_, _ = svc.Process(t.Context(), &proxy.Request{ID: "r", UserID: "u", Service: "order"})
		})
	}
	for range calls {
		<-entered
	}
	if got := value(m, "proxy_inflight_requests", "service", "order"); got != calls {
		t.Errorf("proxy_inflight_requests while %d calls wait = %v, want %d", calls, got, calls)
	}
	close(release)
	wg.Wait()
	if got := value(m, "proxy_inflight_requests", "service", "order"); got != 0 {
		t.Errorf("proxy_inflight_requests after the calls = %v, want 0", got)
	}
}

func TestPanicIsCountedAsError(t *testing.T) {
	m := metrics.New(prometheus.NewPedanticRegistry())
	svc := proxy.Chain(proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		panic("bug")
	}), proxy.Instrumented(m))
	func() {
		defer func() { _ = recover() }()
		_, _ = svc.Process(t.Context(), &proxy.Request{ID: "r", UserID: "u", Service: "order"})
	}()
	if got := value(m, "proxy_requests_total", "service", "order", "outcome", "error"); got != 1 {
		t.Errorf(`proxy_requests_total{outcome="error"} after a panic = %v, want 1`, got)
	}
	if got := value(m, "proxy_inflight_requests", "service", "order"); got != 0 {
		t.Errorf("proxy_inflight_requests after a panic = %v, want 0", got)
	}
}

func TestUnknownOutcomeIsCountedAsError(t *testing.T) {
	m := metrics.New(prometheus.NewPedanticRegistry())
	m.Begin("order")
	m.End(proxy.Observation{Service: "order", Outcome: proxy.Outcome(200)})
	if got := value(m, "proxy_requests_total", "service", "order", "outcome", "error"); got != 1 {
		t.Errorf(`proxy_requests_total{outcome="error"} after End(Outcome(200)) = %v, want 1`, got)
	}
}

func TestEvents(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	m.SetBreakerState("payment", metrics.BreakerOpen)
	m.SetBreakerState("payment", metrics.BreakerHalfOpen)
	m.SetBreakerState("user", metrics.BreakerClosed)
	m.RecordRetry("payment")
	m.RecordRetry("payment")
	m.RecordRetry("user")
	m.SetInstanceHealthy("payment", "payment-1", true)
	m.SetInstanceHealthy("payment", "payment-2", true)
	m.SetInstanceHealthy("payment", "payment-2", false)
	m.SetInstanceHealthy("payment", "payment-3", true)
	if !m.ForgetInstance("payment", "payment-3") {
		t.Errorf(`ForgetInstance("payment", "payment-3") = false, want true`)
	}
	if m.ForgetInstance("payment", "payment-9") {
		t.Errorf(`ForgetInstance("payment", "payment-9") = true, want false`)
	}

	const want = `
# HELP proxy_breaker_state State of the service's circuit breaker: 0 closed, 1 half-open, 2 open.
# TYPE proxy_breaker_state gauge
proxy_breaker_state{service="payment"} 1
proxy_breaker_state{service="user"} 0
# HELP proxy_retries_total Attempts repeated by the retry layer, by service.
# TYPE proxy_retries_total counter
proxy_retries_total{service="payment"} 2
proxy_retries_total{service="user"} 1
# HELP proxy_instance_healthy Whether an instance of the service may take calls: 1 healthy, 0 not.
# TYPE proxy_instance_healthy gauge
proxy_instance_healthy{instance="payment-1",service="payment"} 1
proxy_instance_healthy{instance="payment-2",service="payment"} 0
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want),
		"proxy_breaker_state", "proxy_retries_total", "proxy_instance_healthy"); err != nil {
		t.Errorf("CollectAndCompare() = %v", err)
	}
	lint(t, reg)
}

func TestBreakerStateString(t *testing.T) {
	tests := []struct {
		s    metrics.BreakerState
		want string
	}{
		{metrics.BreakerClosed, "closed"},
		{metrics.BreakerHalfOpen, "half-open"},
		{metrics.BreakerOpen, "open"},
		{metrics.BreakerState(7), "unknown"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("BreakerState(%d).String() = %q, want %q", int(tt.s), got, tt.want)
		}
	}
}

func TestMaxServicesBoundsLabels(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg, metrics.WithMaxServices(2))
	svc := proxy.Chain(newScriptedBackend(func(int) kind { return fresh }), proxy.Instrumented(m))
	for _, service := range []string{"a", "b", "c", "d", "a", "c"} {
		_, _ = svc.Process(t.Context(), &proxy.Request{ID: "r", UserID: "u", Service: service})
	}
	m.RecordRetry("e")

	for _, tt := range []struct {
		service string
		want    float64
	}{{"a", 2}, {"b", 1}, {metrics.OtherService, 3}} {
		if got := value(m, "proxy_requests_total", "service", tt.service, "outcome", "ok"); got != tt.want {
			t.Errorf("proxy_requests_total{service=%q,outcome=\"ok\"} = %v, want %v", tt.service, got, tt.want)
		}
	}
	if got := value(m, "proxy_retries_total", "service", metrics.OtherService); got != 1 {
		t.Errorf("proxy_retries_total{service=%q} = %v, want 1", metrics.OtherService, got)
	}
	if n := testutil.CollectAndCount(m, "proxy_requests_total"); n != 3*len(proxy.Outcomes()) {
		t.Errorf("CollectAndCount(proxy_requests_total) = %d, want %d", n, 3*len(proxy.Outcomes()))
	}
}

func TestInvalidUTF8Service(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	m.Begin("pay\xffment")
	m.End(proxy.Observation{Service: "pay\xffment"})
	m.SetInstanceHealthy("pay\xffment", "i\xfe", true)
	if got := value(m, "proxy_requests_total", "service", "pay\uFFFDment", "outcome", "ok"); got != 1 {
		t.Errorf(`proxy_requests_total{service="pay\uFFFDment"} = %v, want 1`, got)
	}
	if _, err := reg.Gather(); err != nil {
		t.Errorf("Gather() error = %v", err)
	}
}

func TestConcurrentCallsAreAllCounted(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	svc := proxy.Chain(newScriptedBackend(func(n int) kind { return kind(n % int(numKinds)) }), proxy.Instrumented(m))
	const goroutines, calls = 8, 100
	services := []string{"payment", "user", "order", "inventory"}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				s := services[(g+i)%len(services)]
				_, _ = svc.Process(t.Context(), &proxy.Request{ID: "r", UserID: "u", Service: s})
				if i%10 == 0 {
					m.RecordRetry(s)
				}
			}
		})
	}
	wg.Wait()
	var total float64
	for _, s := range services {
		for _, o := range proxy.Outcomes() {
			total += value(m, "proxy_requests_total", "service", s, "outcome", o.String())
		}
		if got := value(m, "proxy_inflight_requests", "service", s); got != 0 {
			t.Errorf("proxy_inflight_requests{service=%q} = %v, want 0", s, got)
		}
	}
	if total != goroutines*calls {
		t.Errorf("sum of proxy_requests_total = %v, want %d", total, goroutines*calls)
	}
}

func TestNewPanicsOnBadConfig(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"nil registerer", func() { metrics.New(nil) }},
		{"registered twice", func() {
			reg := prometheus.NewRegistry()
			metrics.New(reg)
			metrics.New(reg)
		}},
		{"no bucket", func() { metrics.WithBuckets() }},
		{"unsorted buckets", func() { metrics.WithBuckets(1, 0.5) }},
		{"repeated bucket", func() { metrics.WithBuckets(1, 1) }},
		{"zero services", func() { metrics.WithMaxServices(0) }},
		{"unknown breaker state", func() {
			metrics.New(prometheus.NewRegistry()).SetBreakerState("payment", metrics.BreakerState(3))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.HasPrefix(s, "metrics: ") {
					t.Errorf("%s: recovered %v, want a panic starting with %q", tt.name, r, "metrics: ")
				}
			}()
			tt.f()
		})
	}
}

func TestNewRegistersOnTheGivenRegistererOnly(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.Begin("payment")
	n, err := testutil.GatherAndCount(reg, "proxy_inflight_requests")
	if err != nil || n != 1 {
		t.Errorf("GatherAndCount(reg, proxy_inflight_requests) = %d, %v, want 1, nil", n, err)
	}
	if !reg.Unregister(m) {
		t.Errorf("Unregister(m) = false, want true")
	}
	n, err = testutil.GatherAndCount(prometheus.DefaultGatherer, "proxy_inflight_requests")
	if err != nil || n != 0 {
		t.Errorf("GatherAndCount(DefaultGatherer, proxy_inflight_requests) = %d, %v, want 0, nil", n, err)
	}
}

var (
	benchResp = &proxy.Response{RequestID: "req_1", Service: "payment"}
	benchReq  = &proxy.Request{ID: "req_1", UserID: "alice", Service: "payment"}
	// benchBackend answers without allocating, so that the benchmark measures
	// Instrumented and Metrics alone.
	benchBackend = proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		return benchResp, nil
	})
)

func BenchmarkInstrumented(b *testing.B) {
	svc := proxy.Chain(benchBackend, proxy.Instrumented(metrics.New(prometheus.NewRegistry())))
	ctx := b.Context()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = svc.Process(ctx, benchReq)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = svc.Process(ctx, benchReq)
			}
		})
	})
}
