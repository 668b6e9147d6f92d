package main

import (
	"time"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/balance"
	"github.com/proxykit/proxy/breaker"
	"github.com/proxykit/proxy/rediscache"
	"github.com/proxykit/proxy/redislimit"
)

// A serviceEntry is one configured service: its stack, its instances and
// handles on the layers whose state the health and stats pages show.
type serviceEntry struct {
	name      string
	cfg       *serviceConfig
	svc       proxy.Service // the whole stack, outermost layer first
	instances []*instanceEntry
	pool      *balance.Balancer[proxy.Service]
	breaker   *breaker.Breaker // nil without a breaker section
	// redisLimiter and redisCache are the service's Redis-backed layers,
	// nil when it keeps its limit and cache in memory.
	redisLimiter *redislimit.Limiter
	redisCache   *rediscache.Store
}

// An instanceEntry is one instance of a service.
type instanceEntry struct {
	name string
	url  string        // remote instances
	demo *demoInstance // demo instances
	svc  proxy.Service
}

// kind describes the instance for the health page.
func (in *instanceEntry) kind() string {
	if in.demo != nil {
		return "demo"
	}
	return "remote"
}

// A backendEntry is the data of a demo service and its kind.
type backendEntry struct {
	kind    string
	backend demoBackend
}

// buildInstances makes the instances of service: demo instances share one
// backend, as replicas share a database, which outlives reloads while the
// service keeps its kind; remote ones share the gateway's HTTP client.
// g.mu must be held, or the gateway not yet shared.
func (g *gateway) buildInstances(service string, sc *serviceConfig) []*instanceEntry {
	var out []*instanceEntry
	for _, ic := range sc.Instances {
		in := &instanceEntry{name: ic.Name}
		if ic.Demo != "" {
			be, ok := g.backends[service]
			if !ok || be.kind != ic.Demo {
				be = backendEntry{kind: ic.Demo, backend: demoFactories[ic.Demo]()}
				g.backends[service] = be
			}
			backend := be.backend
			f := fault{Latency: ic.Latency, Jitter: ic.Jitter, ErrorRate: ic.ErrorRate, Down: ic.Down}
			in.demo = newDemoInstance(ic.Name, ic.Demo, backend, f, g.cfg.Seed)
			in.svc = in.demo
		} else {
			in.url = ic.URL
			r := &remoteInstance{name: ic.Name, url: ic.URL, client: g.client}
			if tp := g.shared.tracer; tp != nil {
				r.tracer = tp.Tracer(tracerScope)
			}
			in.svc = r
			if ic.HealthURL != "" {
				in.svc = &checkedRemote{remoteInstance: r, healthURL: ic.HealthURL}
			}
		}
		out = append(out, in)
	}
	return out
}

// newPool makes the balancer over a service's instances.
func newPool(sc *serviceConfig, instances []*instanceEntry) *balance.Balancer[proxy.Service] {
	members := make([]balance.Instance[proxy.Service], len(instances))
	for i, in := range instances {
		members[i] = balance.Instance[proxy.Service]{Name: in.name, Value: in.svc}
	}
	var picker balance.Picker
	switch sc.Balance.Policy {
	case "random":
		picker = balance.NewRandom()
	case "least_connections":
		picker = balance.NewLeastConnections()
	case "p2c":
		picker = balance.NewP2C()
	default:
		picker = balance.NewRoundRobin()
	}
	opts := []balance.Option{
		balance.WithFailureThreshold(sc.Balance.EjectAfter),
		balance.WithEjectionTime(sc.Balance.EjectTime),
		balance.WithMaxEjectionTime(max(sc.Balance.EjectTime, 5*time.Minute)),
		balance.WithMaxEjectionPercent(sc.Balance.MaxEjectedPercent),
	}
	if h := sc.HealthCheck; h != nil {
		opts = append(opts,
			balance.WithCheckInterval(h.Interval),
			balance.WithCheckTimeout(h.Timeout),
			balance.WithUnhealthyThreshold(h.UnhealthyAfter),
			balance.WithHealthyThreshold(h.HealthyAfter),
		)
	}
	return balance.New(members, picker, opts...)
}
