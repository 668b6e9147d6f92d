package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The servers' names in the report.
const (
	nameBare     = "bare net/http"
	nameGateway  = "gateway"
	nameRevProxy = "httputil.ReverseProxy"
)

// processPath is the gateway's process route for service.
func processPath(service string) string { return "/api/v1/services/" + service + "/process" }

// sample is one reading of a server's RSS.
type sample struct {
	at  time.Duration // since the measured run started
	rss int64
}

// A result is one server's measured run.
type result struct {
	round    int // from 1
	scenario string
	name     string
	wrk      wrkResult
	cpu      time.Duration // the server's CPU time during the run
	peak     int64         // VmHWM at the end, bytes
	samples  []sample
	logLines int      // lines the server logged (the gateway logs at warn)
	logHead  []string // the first of them
	answer   string
}

// cpuPerRequest returns the server's CPU time per request.
func (r result) cpuPerRequest() time.Duration {
	if r.wrk.Requests == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.wrk.Requests)
}

// thirds returns the mean RSS of the first and of the last third of the
// run.
func (r result) thirds() (first, last int64) {
	if len(r.samples) == 0 {
		return 0, 0
	}
	end := r.samples[len(r.samples)-1].at
	var fs, ls, fn, ln int64
	for _, s := range r.samples {
		switch {
		case s.at <= end/3:
			fs += s.rss
			fn++
		case s.at >= end*2/3:
			ls += s.rss
			ln++
		}
	}
	if fn == 0 || ln == 0 {
		return 0, 0
	}
	return fs / fn, ls / ln
}

// buildGateway builds the example gateway as dir/name, with the files of
// overlay (go build -overlay: path in examples/gateway to contents) added.
func (s *session) buildGateway(ctx context.Context, name string, overlay map[string]string) (string, error) {
	out := filepath.Join(s.dir, name)
	args := []string{"build", "-o", out}
	if len(overlay) > 0 {
		replace := map[string]string{}
		for file, contents := range overlay {
			src := filepath.Join(s.dir, "overlay-"+file)
			if err := os.WriteFile(src, []byte(contents), 0o644); err != nil {
				return "", err
			}
			replace[filepath.Join(s.root, "examples", "gateway", file)] = src
		}
		b, err := json.Marshal(map[string]any{"Replace": replace})
		if err != nil {
			return "", err
		}
		ov := filepath.Join(s.dir, name+"-overlay.json")
		if err := os.WriteFile(ov, b, 0o644); err != nil {
			return "", err
		}
		args = append(args, "-overlay", ov)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./examples/gateway")...)
	cmd.Dir = s.root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./examples/gateway: %w\n%s", err, b)
	}
	return out, nil
}

// startSelf starts this program as a -serve server and waits until it is
// ready. It returns the process and its base URL.
func (s *session) startSelf(ctx context.Context, name, kind string, env []string, args ...string) (*proc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := s.procs.start(name, env, append([]string{s.self, "-serve", kind, "-addr", addr}, args...)...)
	if err != nil {
		return nil, "", err
	}
	base := "http://" + addr
	return p, base, waitReady(ctx, p, base+"/healthz", 15*time.Second)
}

// startGateway starts the gateway binary bin with the configuration yaml,
// written to a file, and waits until it is ready.
func (s *session) startGateway(ctx context.Context, bin, yaml string, env []string) (*proc, string, error) {
	cfg := filepath.Join(s.dir, fmt.Sprintf("gateway-%d.yaml", len(s.procs.procs)))
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		return nil, "", err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := s.procs.start(nameGateway, env, bin, "-config", cfg, "-addr", addr)
	if err != nil {
		return nil, "", err
	}
	base := "http://" + addr
	return p, base, waitReady(ctx, p, base+"/readyz", 15*time.Second)
}

// runLocal measures the bare server and the gateway with an in-process
// instance.
func (s *session) runLocal(ctx context.Context) ([]result, error) {
	var out []result
	p, base, err := s.startSelf(ctx, nameBare, "bare", nil)
	if err != nil {
		return nil, err
	}
	r, err := s.measure(ctx, scenarioLocal, p, base+processPath("inventory"))
	p.stop()
	if err != nil {
		return nil, err
	}
	out = append(out, r)

	p, base, err = s.startGateway(ctx, s.gateway, gatewayLocalYAML, nil)
	if err != nil {
		return nil, err
	}
	r, err = s.measure(ctx, scenarioLocal, p, base+processPath("inventory"))
	p.stop()
	if err != nil {
		return nil, err
	}
	return append(out, r), nil
}

// remoteYAML returns gateway-remote.yaml with backend as its instance's
// address.
func remoteYAML(backendBase string) string {
	return strings.ReplaceAll(gatewayRemoteYAML, "http://"+placeholderBackend, backendBase)
}

// runRemote measures httputil.ReverseProxy and the gateway in front of the
// same backend process.
func (s *session) runRemote(ctx context.Context) ([]result, error) {
	backend, backendBase, err := s.startSelf(ctx, "backend", "bare", nil)
	if err != nil {
		return nil, err
	}
	defer backend.stop()
	var out []result
	p, base, err := s.startSelf(ctx, nameRevProxy, "revproxy", nil, "-backend", backendBase)
	if err != nil {
		return nil, err
	}
	r, err := s.measure(ctx, scenarioRemote, p, base+processPath("backend"))
	p.stop()
	if err != nil {
		return nil, err
	}
	out = append(out, r)

	p, base, err = s.startGateway(ctx, s.gateway, remoteYAML(backendBase), nil)
	if err != nil {
		return nil, err
	}
	r, err = s.measure(ctx, scenarioRemote, p, base+processPath("backend"))
	p.stop()
	if err != nil {
		return nil, err
	}
	if backend.exited() {
		return nil, fmt.Errorf("the backend exited during the run (%v):\n%s", backend.err, backend.logTail(20))
	}
	return append(out, r), nil
}

// measure checks the server's answer, warms it up and drives it for the
// run's duration, sampling its RSS.
func (s *session) measure(ctx context.Context, scenario string, p *proc, url string) (result, error) {
	r := result{scenario: scenario, name: p.name}
	answer, err := probe(ctx, url)
	if err != nil {
		return r, fmt.Errorf("%s: %w", p.name, err)
	}
	r.answer = answer
	if s.opts.warmup > 0 {
		s.logf("%s: %s warm-up, %s", scenario, p.name, s.opts.warmup)
		if _, _, err := runWrk(ctx, s.wrk, s.opts.warmup, url); err != nil {
			return r, err
		}
	}
	s.logf("%s: %s for %s: wrk %s", scenario, p.name, s.opts.duration, strings.Join(s.wrk.args(s.opts.duration, url), " "))
	cpu0, err := procCPU(p.pid())
	if err != nil {
		return r, err
	}
	stop := make(chan struct{})
	samples := make(chan []sample, 1)
	go func() { samples <- sampleRSS(p.pid(), 250*time.Millisecond, stop) }()
	res, out, err := runWrk(ctx, s.wrk, s.opts.duration, url)
	close(stop)
	r.samples = <-samples
	if err != nil {
		return r, err
	}
	if s.opts.verbose {
		fmt.Fprintf(s.log, "%s\n", out)
	}
	r.wrk = res
	cpu1, err := procCPU(p.pid())
	if err != nil {
		return r, err
	}
	r.cpu = cpu1 - cpu0
	if _, r.peak, err = procMem(p.pid()); err != nil {
		return r, err
	}
	if p.exited() {
		return r, fmt.Errorf("%s exited during the run (%v):\n%s", p.name, p.err, p.logTail(20))
	}
	lines := readLines(p.logPath)
	r.logLines, r.logHead = len(lines), lines[:min(len(lines), 5)]
	s.logf("%s: %s: %.0f req/s, p50 %s, p99 %s, %d non-2xx, %d socket errors",
		scenario, p.name, res.RPS(), fmtUS(res.P50US), fmtUS(res.P99US), res.Status, res.SocketErrors())
	return r, nil
}

// sampleRSS reads the process's RSS every interval until stop is closed.
func sampleRSS(pid int, interval time.Duration, stop <-chan struct{}) []sample {
	start := time.Now()
	var out []sample
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if rss, _, err := procMem(pid); err == nil {
			out = append(out, sample{at: time.Since(start), rss: rss})
		}
		select {
		case <-stop:
			return out
		case <-t.C:
		}
	}
}

// probe sends requestBody to url once and checks that the answer is the
// stock read's: 200, JSON, the request's id and SKU-001's stock.
func probe(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(requestBody))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST %s = %d %s, want 200", url, resp.StatusCode, bytes.TrimSpace(body))
	}
	var got struct {
		RequestID string `json:"request_id"`
		Data      struct {
			SKU       string `json:"sku"`
			Available *int   `json:"available"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		return "", fmt.Errorf("POST %s: answer is not JSON: %w: %s", url, err, body)
	}
	if got.RequestID != "load-1" || got.Data.SKU != "SKU-001" || got.Data.Available == nil {
		return "", fmt.Errorf("POST %s: answer %s, want request_id load-1 and SKU-001's stock", url, bytes.TrimSpace(body))
	}
	return string(bytes.TrimSpace(body)), nil
}
