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
	// Principal, when the page sent a token, is who the stream will take
	// it for.
	Principal string `json:"principal,omitempty"`
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

// handleDashboardConfig serves GET /dashboard/config.json: what the page
// needs to know before it opens the stream. With a token, it answers as the
// stream would, 401 or 403 when the stream would refuse the token, so that
// the page can say why; a browser cannot see why a WebSocket handshake
// failed.
func (g *gateway) handleDashboardConfig(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	dc := dashboardConfig{StatsIntervalMillis: g.cfg.Server.WebSocket.StatsInterval.Milliseconds()}
	if r.Header.Get("Authorization") != "" {
		who, aerr := g.streamCaller(g.current(), r)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		info(r.Context()).principal = who.Name
		dc.Principal = who.Name
	} else {
		dc.Demo = g.cfg.Server.WebSocket.LocalhostDemo && localClient(r)
	}
	writeJSON(w, http.StatusOK, dc)
}
