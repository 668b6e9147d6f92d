package main

import (
	"net/http"
	"time"

	"github.com/proxykit/proxy/stats"
)

// statsSnapshot is the proxy's statistics, as /api/v1/stats answers and the
// event stream sends every second. The call figures are those of the
// in-memory observer that Instrumented feeds, next to the Prometheus one:
// the same calls, counted by the same outcomes.
type statsSnapshot struct {
	Time          time.Time                `json:"time"`
	UptimeSeconds float64                  `json:"uptime_seconds"`
	WindowSeconds float64                  `json:"window_seconds"`
	StreamClients int                      `json:"stream_clients"`
	AuditDropped  uint64                   `json:"audit_dropped"`
	Total         stats.ServiceStats       `json:"total"`
	Services      map[string]*serviceStats `json:"services"`
}

// serviceStats is one service's figures: its calls (counts by outcome,
// cache hits and misses, in flight, and over the recent window the rate and
// latency quantiles) and its health.
type serviceStats struct {
	Calls  stats.ServiceStats `json:"calls"`
	Health serviceHealth      `json:"health"`
	Redis  *redisStats        `json:"redis,omitempty"` // a Redis limiter's or cache's figures
}

// serviceStats returns s's figures.
func (g *gateway) serviceStats(s *serviceEntry) *serviceStats {
	calls, ok := g.shared.stats.Service(s.name)
	if !ok {
		calls = stats.ServiceStats{Service: s.name}
	}
	return &serviceStats{Calls: calls, Health: s.health(true), Redis: s.redisStats()}
}

// statsSnapshot gathers the figures of the services of t named in names;
// Total counts every service's calls.
func (g *gateway) statsSnapshot(t *table, names []string) statsSnapshot {
	all := g.shared.stats.Snapshot()
	snap := statsSnapshot{
		Time:          all.Time.UTC(),
		UptimeSeconds: time.Since(g.started).Seconds(),
		WindowSeconds: all.Window.Seconds(),
		StreamClients: g.hub.clients(),
		AuditDropped:  g.shared.auditDropped.Load(),
		Total:         all.Total,
		Services:      map[string]*serviceStats{},
	}
	for _, name := range names {
		snap.Services[name] = g.serviceStats(t.services[name])
	}
	return snap
}

// handleStats serves GET /api/v1/stats to any authenticated caller: the
// figures of the services it may use (all of them for an admin role), as
// .../{service}/metrics would answer them, and the total of every service.
func (g *gateway) handleStats(w http.ResponseWriter, r *http.Request) {
	t := g.current()
	who, ok := authenticated(t, w, r)
	if !ok {
		return
	}
	var names []string
	for _, name := range t.names {
		if t.mayUse(who, t.services[name]) {
			names = append(names, name)
		}
	}
	writeJSON(w, http.StatusOK, g.statsSnapshot(t, names))
}

// handleServiceMetrics serves GET /api/v1/services/{service}/metrics: one
// service's figures.
func (g *gateway) handleServiceMetrics(w http.ResponseWriter, r *http.Request) {
	s, _, ok := g.authorizedService(g.current(), w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, g.serviceStats(s))
}
