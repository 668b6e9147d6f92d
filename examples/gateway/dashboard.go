package main

import (
	"net/http"

	"github.com/proxykit/proxy/examples/gateway/dashboard"
)

// dashboardPath is where the live dashboard is served.
const dashboardPath = "/dashboard/"

// dashboardConfig is what GET /dashboard/config.json tells the page.
type dashboardConfig struct {
	// Demo reports whether this client may open the stream without a
	// token (see streamCaller).
	Demo bool `json:"demo"`
	// StatsIntervalMillis is how often the stream sends a stats event.
	StatsIntervalMillis int64 `json:"stats_interval_ms"`
}

// dashboardRoutes adds the live dashboard to mux: the page and its assets
// under /dashboard/, what the page needs to know about this gateway at
// /dashboard/config.json, and redirects from / and /dashboard to the page.
// The page holds no data: it shows the /ws stream, which authenticates.
func (g *gateway) dashboardRoutes(mux *http.ServeMux) {
	notFound := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotFound, Code: codeNotFound, Message: "no such route"})
	})
	mux.Handle("GET "+dashboardPath, http.StripPrefix(dashboardPath[:len(dashboardPath)-1], dashboard.Handler(notFound)))
	mux.HandleFunc("GET "+dashboardPath+"config.json", g.handleDashboardConfig)
	mux.Handle("GET /{$}", http.RedirectHandler(dashboardPath, http.StatusFound))
}

// handleDashboardConfig serves GET /dashboard/config.json.
func (g *gateway) handleDashboardConfig(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, dashboardConfig{
		Demo:                g.cfg.Server.WebSocket.LocalhostDemo && localClient(r),
		StatsIntervalMillis: g.cfg.Server.WebSocket.StatsInterval.Milliseconds(),
	})
}
