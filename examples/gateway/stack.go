package main

import (
	"context"
	"time"

	"github.com/proxykit/proxy"
)

// A serviceEntry is one configured service: its stack, its instances and
// handles on the layers whose state the health and stats pages show.
type serviceEntry struct {
	name      string
	cfg       *serviceConfig
	svc       proxy.Service // the whole stack, outermost layer first
	instances []*instanceEntry
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

// sharedLayers are the parts of the stack that every service shares.
type sharedLayers struct{}

// newSharedLayers builds what every service's stack shares.
func (g *gateway) newSharedLayers() (*sharedLayers, error) {
	return &sharedLayers{}, nil
}

// buildInstances makes the instances of a service: demo instances share one
// backend, as replicas share a database; remote ones share the gateway's
// HTTP client.
func (g *gateway) buildInstances(sc *serviceConfig) []*instanceEntry {
	var backend demoBackend
	var out []*instanceEntry
	for _, ic := range sc.Instances {
		in := &instanceEntry{name: ic.Name}
		if ic.Demo != "" {
			if backend == nil {
				backend = demoFactories[ic.Demo]()
			}
			f := fault{Latency: ic.Latency, Jitter: ic.Jitter, ErrorRate: ic.ErrorRate, Down: ic.Down}
			in.demo = newDemoInstance(ic.Name, ic.Demo, backend, f, g.cfg.Seed)
			in.svc = in.demo
		} else {
			in.url = ic.URL
			r := &remoteInstance{name: ic.Name, url: ic.URL, client: g.client}
			in.svc = r
			if ic.HealthURL != "" {
				in.svc = &checkedRemote{remoteInstance: r, healthURL: ic.HealthURL}
			}
		}
		out = append(out, in)
	}
	return out
}

// buildService builds one service's stack from its configuration. This is
// the one place where the stack is assembled.
func (g *gateway) buildService(name string, sc *serviceConfig, _ *sharedLayers) (*serviceEntry, error) {
	s := &serviceEntry{name: name, cfg: sc, instances: g.buildInstances(sc)}
	s.svc = s.instances[0].svc
	return s, nil
}

// startBackground starts the gateway's background work: the stats snapshot
// on the event stream. The returned channel is closed when all of it has
// stopped after ctx ends.
func (g *gateway) startBackground(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(g.cfg.Server.WebSocket.StatsInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if g.hub.active() {
					g.hub.publish(event{Type: "stats", Time: time.Now().UTC(), Data: g.statsSnapshot()})
				}
			}
		}
	}()
	return done
}

// breakerState names the state of s's breaker, or "" when it has none.
func (s *serviceEntry) breakerState() string { return "" }

// instanceStatuses reports each instance's health.
func (s *serviceEntry) instanceStatuses() []instanceStatus {
	out := make([]instanceStatus, 0, len(s.instances))
	for _, in := range s.instances {
		st := instanceStatus{Name: in.name, Kind: in.kind(), URL: in.url, Healthy: true, State: "healthy"}
		if in.demo != nil {
			f := in.demo.currentFault()
			st.Calls = in.demo.calls.Load()
			st.Fault = f.json()
			if f.Down {
				st.Healthy, st.State = false, "down"
			}
		}
		out = append(out, st)
	}
	return out
}
