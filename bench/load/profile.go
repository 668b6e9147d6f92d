package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// pprofEnv names the environment variable that gives a profiled server the
// address of its net/http/pprof listener: the gateway through
// testdata/pprof_overlay.go, this program's -serve servers in runServer.
const pprofEnv = "PROXY_LOAD_PPROF"

// A profile is what -profile found: the gateway and its baseline under the
// profiler.
type profile struct {
	scenario string
	seconds  int // of each CPU profile
	baseline profiled
	gateway  profiled
}

// A profiled server's run: its figures, the top of its CPU profile and its
// allocations per request.
type profiled struct {
	run        result
	path       string // the CPU profile
	topFlat    string
	topCum     string
	topAllocs  string  // allocation sites by objects allocated, since start
	mallocs    float64 // heap objects allocated per request
	allocBytes float64 // heap bytes allocated per request
	gcs        uint64  // garbage collections during the run
}

// runProfile runs the baseline of scenario and then the gateway, built
// with net/http/pprof, under the same load, each while taking a CPU profile
// and reading the runtime's allocation counters before and after.
func (s *session) runProfile(ctx context.Context, scenario string) (*profile, error) {
	s.logf("profile: building the gateway with net/http/pprof (go build -overlay)")
	bin, err := s.buildGateway(ctx, "gateway-pprof", map[string]string{"zz_load_pprof.go": pprofOverlay})
	if err != nil {
		return nil, err
	}
	pr := &profile{scenario: scenario, seconds: max(1, int(math.Floor(s.opts.duration.Seconds()))-2)}
	baseOut := strings.TrimSuffix(s.opts.profileOut, ".pprof") + "-baseline.pprof"

	pprofAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env := []string{pprofEnv + "=" + pprofAddr}
	var base *proc
	var baseURL string
	yaml, service := gatewayLocalYAML, "inventory"
	if scenario == scenarioRemote {
		backend, backendBase, err := s.startSelf(ctx, "backend", "bare", nil)
		if err != nil {
			return nil, err
		}
		defer backend.stop()
		yaml, service = remoteYAML(backendBase), "backend"
		base, baseURL, err = s.startSelf(ctx, nameRevProxy, "revproxy", env, "-backend", backendBase)
		if err != nil {
			return nil, err
		}
	} else {
		if base, baseURL, err = s.startSelf(ctx, nameBare, "bare", env); err != nil {
			return nil, err
		}
	}
	pr.baseline, err = s.profileRun(ctx, base, s.self, pprofAddr, baseURL+processPath(service), baseOut, pr.seconds)
	base.stop()
	if err != nil {
		return nil, err
	}

	if pprofAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	env = []string{pprofEnv + "=" + pprofAddr}
	gw, gwURL, err := s.startGateway(ctx, bin, yaml, env)
	if err != nil {
		return nil, err
	}
	defer gw.stop()
	pr.gateway, err = s.profileRun(ctx, gw, bin, pprofAddr, gwURL+processPath(service), s.opts.profileOut, pr.seconds)
	return pr, err
}

// profileRun drives the server p, the binary bin, at url as measure does,
// while taking a CPU profile of seconds from its pprof listener at
// pprofAddr into path.
func (s *session) profileRun(ctx context.Context, p *proc, bin, pprofAddr, url, path string, seconds int) (profiled, error) {
	out := profiled{path: path}
	pprofBase := "http://" + pprofAddr + "/debug/pprof/"
	if err := waitReady(ctx, p, pprofBase, 15*time.Second); err != nil {
		return out, err
	}
	if _, err := probe(ctx, url); err != nil {
		return out, err
	}
	if s.opts.warmup > 0 {
		if _, _, err := runWrk(ctx, s.wrk, s.opts.warmup, url); err != nil {
			return out, err
		}
	}
	before, err := memStats(ctx, pprofBase)
	if err != nil {
		return out, err
	}
	// The profile covers the run but its first and last second.
	profErr := make(chan error, 1)
	go func() {
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-ctx.Done():
			profErr <- ctx.Err()
			return
		case <-t.C:
		}
		profErr <- fetch(ctx, pprofBase+"profile?seconds="+strconv.Itoa(seconds), path)
	}()
	s.logf("profile: %s for %s, CPU profile of %ds", p.name, s.opts.duration, seconds)
	cpu0, err := procCPU(p.pid())
	if err != nil {
		return out, err
	}
	res, _, err := runWrk(ctx, s.wrk, s.opts.duration, url)
	if perr := <-profErr; err == nil && perr != nil {
		err = fmt.Errorf("fetching the CPU profile: %w", perr)
	}
	if err != nil {
		return out, err
	}
	cpu1, err := procCPU(p.pid())
	if err != nil {
		return out, err
	}
	after, err := memStats(ctx, pprofBase)
	if err != nil {
		return out, err
	}
	out.run = result{name: p.name, wrk: res, cpu: cpu1 - cpu0}
	if n := float64(res.Requests); n > 0 {
		out.mallocs = float64(after["Mallocs"]-before["Mallocs"]) / n
		out.allocBytes = float64(after["TotalAlloc"]-before["TotalAlloc"]) / n
	}
	out.gcs = after["NumGC"] - before["NumGC"]
	if out.topFlat, err = pprofTop(ctx, bin, path); err != nil {
		return out, err
	}
	if out.topCum, err = pprofTop(ctx, bin, path, "-cum"); err != nil {
		return out, err
	}
	allocs := strings.TrimSuffix(path, ".pprof") + "-allocs.pprof"
	if err := fetch(ctx, pprofBase+"allocs", allocs); err != nil {
		return out, fmt.Errorf("fetching the allocation profile: %w", err)
	}
	if out.topAllocs, err = pprofTop(ctx, bin, allocs, "-sample_index=alloc_objects"); err != nil {
		return out, err
	}
	return out, nil
}

// fetch saves the body of a GET of url to path.
func fetch(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET %s = %d %s", url, resp.StatusCode, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// memStats reads the runtime.MemStats counters that the allocs profile's
// text form ends with ("# Mallocs = 123").
func memStats(ctx context.Context, pprofBase string) (map[string]uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pprofBase+"allocs?debug=1", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "# "), " = ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			out[k] = n
		}
	}
	for _, k := range []string{"Mallocs", "TotalAlloc", "NumGC"} {
		if _, ok := out[k]; !ok {
			return nil, fmt.Errorf("%sallocs?debug=1: no %s", pprofBase, k)
		}
	}
	return out, nil
}

// pprofTop returns go tool pprof -top of the profile, trimmed to its first
// rows.
func pprofTop(ctx context.Context, bin, path string, flags ...string) (string, error) {
	args := append([]string{"tool", "pprof", "-top", "-nodecount=25"}, flags...)
	cmd := exec.CommandContext(ctx, "go", append(args, bin, path)...)
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %w", err)
	}
	// Keep the profile's type, duration and rows, not its file, build id
	// and time.
	var keep []string
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, "File:") && !strings.HasPrefix(line, "Build ID:") && !strings.HasPrefix(line, "Time:") {
			keep = append(keep, strings.TrimRight(line, "\n"))
		}
	}
	return strings.Join(keep, "\n"), nil
}
