package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newRegistry returns the gateway's own Prometheus registry (never the
// global one) with the Go and process collectors, the HTTP request counter
// and the stream gauges.
func (g *gateway) newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	g.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_http_requests_total",
		Help: "HTTP requests answered by the gateway, by route pattern and status code.",
	}, []string{"route", "code"})
	g.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_config_reloads_total",
		Help: "Configuration reloads (SIGHUP or POST /api/v1/admin/reload), by result: success or error.",
	}, []string{"result"})
	g.lastReload = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gateway_config_last_reload_success_timestamp_seconds",
		Help: "When the configuration was last loaded successfully, at start-up or by a reload, in seconds since the Unix epoch.",
	})
	g.reloads.WithLabelValues("success")
	g.reloads.WithLabelValues("error")
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		g.httpRequests,
		g.reloads,
		g.lastReload,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gateway_stream_clients",
			Help: "WebSocket clients connected to /ws.",
		}, func() float64 { return float64(g.hub.clients()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gateway_stream_dropped_clients_total",
			Help: "WebSocket clients dropped because they read too slowly.",
		}, func() float64 { return float64(g.hub.dropped.Load()) }),
	)
	return reg
}

// metricsHandler serves GET /metrics in the Prometheus exposition format.
func (g *gateway) metricsHandler() http.Handler {
	return promhttp.HandlerFor(g.reg, promhttp.HandlerOpts{
		Registry:            g.reg,
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		// withCompression compresses every answer when it is on.
		DisableCompression: g.cfg.Server.Compression.Enabled,
	})
}
