package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	_ "net/http/pprof" // for -profile: see pprofEnv
	"net/url"
	"os"
	"sync"
	"time"
)

// The servers the program starts by re-executing itself with -serve. Their
// http.Server has the timeouts of the gateway's defaults (server: in
// examples/gateway/config.go), so that what differs is the work per call.

// maxBody bounds a request body, as the gateway's max_body_bytes does.
const maxBody = 1 << 20

// newServer returns an http.Server for h with the gateway's default
// timeouts.
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// serve runs srv on addr until ctx ends, then shuts it down.
func serve(ctx context.Context, srv *http.Server, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// envelope is a process call's body, as the gateway reads it.
type envelope struct {
	ID     string          `json:"id"`
	UserID string          `json:"user_id"`
	Data   json.RawMessage `json:"data"`
}

// response is a process call's answer, as the gateway writes it
// (proxy.Response).
type response struct {
	RequestID string          `json:"request_id"`
	Service   string          `json:"service"`
	Instance  string          `json:"instance,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	Cached    bool            `json:"cached"`
}

// stockQuery and stockLevel are the data of the demo inventory's stock read.
type stockQuery struct {
	Action string `json:"action"`
	SKU    string `json:"sku"`
}

type stockLevel struct {
	SKU       string `json:"sku"`
	Available int    `json:"available"`
}

// bareServer answers process calls with no layers: it decodes the
// envelope and its data, reads the stock under a mutex as the demo
// inventory does, and encodes the answer. It is safe for concurrent use.
type bareServer struct {
	name string

	// mu guards stock.
	mu    sync.Mutex
	stock map[string]int
}

func newBareServer(name string) *bareServer {
	return &bareServer{name: name, stock: map[string]int{
		"SKU-001": 100, "SKU-002": 50, "SKU-003": 25, "SKU-004": 5, "SKU-005": 0,
	}}
}

// handler routes the gateway's process path, the remote instance's
// /process (the gateway's backend) and /healthz.
func (b *bareServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/services/{service}/process", b.process)
	mux.HandleFunc("POST /process", b.process)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	return mux
}

func (b *bareServer) process(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "could not read the body", http.StatusBadRequest)
		return
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		http.Error(w, "want a JSON envelope", http.StatusBadRequest)
		return
	}
	var q stockQuery
	if err := json.Unmarshal(env.Data, &q); err != nil || q.Action != "stock" {
		http.Error(w, `want data {"action":"stock","sku":...}`, http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	n, ok := b.stock[q.SKU]
	b.mu.Unlock()
	if !ok {
		http.Error(w, "unknown SKU", http.StatusBadRequest)
		return
	}
	data, err := json.Marshal(stockLevel{SKU: q.SKU, Available: n})
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	service := r.PathValue("service")
	if service == "" {
		service = "inventory"
	}
	out, err := json.Marshal(response{RequestID: env.ID, Service: service, Instance: b.name, Data: data})
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(out, '\n'))
}

// newReverseProxy returns an httputil.ReverseProxy to backend, whose
// transport pools connections as the gateway's remote client does
// (examples/gateway/remote.go), answering /healthz itself.
func newReverseProxy(backend string) (http.Handler, error) {
	target, err := url.Parse(backend)
	if err != nil || target.Host == "" {
		return nil, fmt.Errorf("-backend: want a URL such as http://127.0.0.1:8081, got %q", backend)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
			return
		}
		rp.ServeHTTP(w, r)
	}), nil
}

// runServer is the -serve mode: kind is bare or revproxy.
func runServer(ctx context.Context, kind, addr, backend string) error {
	var h http.Handler
	switch kind {
	case "bare":
		h = newBareServer("bare-1").handler()
	case "revproxy":
		var err error
		if h, err = newReverseProxy(backend); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-serve: want bare or revproxy, got %q", kind)
	}
	if addr == "" {
		return errors.New("-serve needs -addr host:port")
	}
	if pa := os.Getenv(pprofEnv); pa != "" {
		// net/http/pprof's handlers are on http.DefaultServeMux, on their
		// own listener, apart from the server's.
		go func() { fmt.Fprintln(os.Stderr, "pprof:", http.ListenAndServe(pa, nil)) }()
	}
	return serve(ctx, newServer(h), addr)
}
