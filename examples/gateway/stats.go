package main

import (
	"net/http"
	"time"
)

// statsSnapshot is the proxy's statistics, as /api/v1/stats answers and the
// event stream sends every second.
type statsSnapshot struct {
	UptimeSeconds float64                  `json:"uptime_seconds"`
	StreamClients int                      `json:"stream_clients"`
	Services      map[string]*serviceStats `json:"services"`
}

// serviceStats is one service's figures.
type serviceStats struct {
	Health serviceHealth `json:"health"`
}

// serviceStats returns s's figures.
func (g *gateway) serviceStats(s *serviceEntry) *serviceStats {
	return &serviceStats{Health: s.health(true)}
}

// statsSnapshot gathers the figures of every service.
func (g *gateway) statsSnapshot() statsSnapshot {
	snap := statsSnapshot{
		UptimeSeconds: time.Since(g.started).Seconds(),
		StreamClients: g.hub.clients(),
		Services:      map[string]*serviceStats{},
	}
	for _, name := range g.names {
		snap.Services[name] = g.serviceStats(g.services[name])
	}
	return snap
}

// handleStats serves GET /api/v1/stats: every service's figures, for any
// authenticated caller.
func (g *gateway) handleStats(w http.ResponseWriter, r *http.Request) {
	who, aerr := g.auth.authenticate(r, "")
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	info(r.Context()).principal = who.Name
	writeJSON(w, http.StatusOK, g.statsSnapshot())
}

// handleServiceMetrics serves GET /api/v1/services/{service}/metrics: one
// service's figures.
func (g *gateway) handleServiceMetrics(w http.ResponseWriter, r *http.Request) {
	s, _, ok := g.authorizedService(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, g.serviceStats(s))
}
