package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// serviceSuffix may follow a service name in URLs: payment-service is
// payment.
const serviceSuffix = "-service"

// A gateway is the HTTP API in front of the configured services. newGateway
// builds it without starting anything; serve runs it until its context ends
// and then shuts it down gracefully.
type gateway struct {
	cfg    *config // as it started: reload changes only the table
	opts   gatewayOptions
	log    *slog.Logger
	hub    *hub
	reg    *prometheus.Registry
	client *http.Client // shared by remote instances
	shared *sharedLayers
	table  atomic.Pointer[table]

	httpRequests *prometheus.CounterVec
	httpCounters sync.Map // httpKey to its prometheus.Counter in httpRequests
	reloads      *prometheus.CounterVec
	lastReload   prometheus.Gauge
	handler      http.Handler

	// mu guards the fields below, and serialises reloads and shutdown.
	mu       sync.Mutex
	serving  bool // health checks of new tables start at once
	closed   bool
	backends map[string]backendEntry // demo data by service, kept across reloads

	// inflight counts the handlers running, including those of hijacked
	// stream connections, which http.Server.Shutdown does not wait for.
	inflight sync.WaitGroup

	ready    atomic.Bool // start-up done and not draining
	draining atomic.Bool
	started  time.Time

	// closers release what the shared layers hold (the tracer), after the
	// table's; audit, the audit sink, is closed last, so that it is
	// flushed after every call has been recorded.
	closers []io.Closer
	audit   io.Closer
}

// newGateway builds the gateway cfg describes: every service's stack and
// instances, the routes and the metrics registry. It starts no goroutines.
func newGateway(cfg *config, log *slog.Logger, opts ...option) (*gateway, error) {
	g := &gateway{
		cfg:      cfg,
		opts:     newGatewayOptions(opts),
		log:      log,
		hub:      newHub(cfg.Server.WebSocket.ClientBuffer, cfg.Server.WebSocket.MaxClients),
		client:   newRemoteClient(),
		backends: map[string]backendEntry{},
	}
	g.reg = g.newRegistry()
	shared, err := g.newSharedLayers()
	if err != nil {
		_ = g.closeAll()
		return nil, err
	}
	g.shared = shared
	g.table.Store(g.newTable(cfg))
	g.lastReload.SetToCurrentTime()
	g.handler = g.newHandler()
	return g, nil
}

// newHandler returns the gateway's handler: the API on an http.ServeMux
// with method patterns, inside the middleware every call goes through.
func (g *gateway) newHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/services/{service}/process", g.handleProcess)
	mux.HandleFunc("GET /api/v1/services/{service}/health", g.handleServiceHealth)
	mux.HandleFunc("GET /api/v1/services/{service}/metrics", g.handleServiceMetrics)
	mux.HandleFunc("PUT /api/v1/services/{service}/instances/{instance}/fault", g.handleSetFault)
	mux.HandleFunc("DELETE /api/v1/services/{service}/instances/{instance}/fault", g.handleClearFault)
	mux.HandleFunc("GET /api/v1/stats", g.handleStats)
	mux.HandleFunc("POST /api/v1/admin/reload", g.handleReload)
	mux.HandleFunc("GET /health", g.handleHealth)
	mux.HandleFunc("GET /healthz", g.handleLiveness)
	mux.HandleFunc("GET /readyz", g.handleReadiness)
	mux.Handle("GET /metrics", g.metricsHandler())
	mux.HandleFunc("GET /ws", g.handleWS)
	g.dashboardRoutes(mux)
	return g.withCallInfo(g.withCompression(g.withCORS(withJSONFallbacks(mux))))
}

// server returns the http.Server with the configured timeouts.
func (g *gateway) server() *http.Server {
	sc := g.cfg.Server
	return &http.Server{
		Handler:           g.handler,
		ReadHeaderTimeout: sc.ReadHeaderTimeout,
		ReadTimeout:       sc.ReadTimeout,
		WriteTimeout:      sc.WriteTimeout,
		IdleTimeout:       sc.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
}

// serve serves on ln until ctx ends, then shuts down: /readyz turns 503,
// the gateway keeps serving for the drain delay, stops accepting, lets
// in-flight calls finish within the drain timeout, closes the stream
// clients, and finally stops the background work and flushes the audit log.
// serve closes ln.
func (g *gateway) serve(ctx context.Context, ln net.Listener) error {
	g.started = time.Now()
	srv := g.server()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	g.mu.Lock()
	g.current().start()
	g.serving = true
	g.mu.Unlock()
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	bgDone := g.startBackground(bgCtx)
	g.ready.Store(true)
	g.log.Info("gateway ready", "addr", ln.Addr().String(), "services", g.current().names)

	var err error
	served := false // serveErr has been read
	fail := func(e error) {
		served = true
		if !errors.Is(e, http.ErrServerClosed) && err == nil {
			err = fmt.Errorf("serving: %w", e)
		}
	}
	select {
	case <-ctx.Done():
	case e := <-serveErr:
		fail(e)
	}

	g.ready.Store(false)
	g.draining.Store(true)
	g.log.Info("draining", "delay", g.cfg.Server.DrainDelay, "timeout", g.cfg.Server.DrainTimeout)
	if !served && g.cfg.Server.DrainDelay > 0 {
		t := time.NewTimer(g.cfg.Server.DrainDelay)
		select {
		case <-t.C:
		case e := <-serveErr:
			fail(e)
		}
		t.Stop()
	}
	// Stream clients are hijacked connections that Shutdown does not wait
	// for: close them first.
	_ = g.hub.Close()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.Server.DrainTimeout)
	defer cancel()
	if serr := srv.Shutdown(shutdownCtx); serr != nil {
		g.log.Warn("drain timeout: closing the remaining connections", "err", serr)
		_ = srv.Close()
	}
	if !served {
		fail(<-serveErr)
	}
	g.inflight.Wait()
	stopBackground()
	<-bgDone
	if cerr := g.closeAll(); cerr != nil && err == nil {
		err = cerr
	}
	g.log.Info("gateway stopped")
	return err
}

// closeAll releases the table's resources, then the shared layers', then
// the audit sink and the remote client's idle connections. Later reloads
// fail.
func (g *gateway) closeAll() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed, g.serving = true, false
	var errs []error
	if t := g.current(); t != nil {
		errs = append(errs, t.close())
	}
	for _, c := range g.closers {
		errs = append(errs, c.Close())
	}
	g.closers = nil
	if g.audit != nil {
		if err := g.audit.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the audit log: %w", err))
		}
		g.audit = nil
	}
	g.client.CloseIdleConnections()
	return errors.Join(errs...)
}
