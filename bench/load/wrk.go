package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrkInstall says how to get wrk.
const wrkInstall = "install it with: sudo apt-get install wrk (Debian, Ubuntu), or build it from https://github.com/wg/wrk"

// checkWrk reports whether wrk can be run, and its version line.
func checkWrk() (string, error) {
	path, err := exec.LookPath("wrk")
	if err != nil {
		return "", fmt.Errorf("wrk not found in PATH: %s", wrkInstall)
	}
	// wrk -v prints its version and usage and exits 1.
	out, _ := exec.Command(path, "-v").CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	if !strings.HasPrefix(line, "wrk ") {
		return "", fmt.Errorf("%s -v: unexpected output %q; %s", path, line, wrkInstall)
	}
	v, _, _ := strings.Cut(line, " Copyright")
	return strings.TrimSpace(v), nil
}

// A wrkResult is what load.lua's done function prints. Times are in
// microseconds, as wrk keeps them.
type wrkResult struct {
	Requests   int64
	DurationUS int64
	Bytes      int64
	Connect    int64 // socket errors
	Read       int64
	Write      int64
	Status     int64 // answers with a status of 400 or more
	Timeout    int64
	P50US      int64
	P90US      int64
	P99US      int64
	P999US     int64
	MaxUS      int64
	MeanUS     float64
}

// RPS returns the requests per second.
func (r wrkResult) RPS() float64 {
	if r.DurationUS == 0 {
		return 0
	}
	return float64(r.Requests) / (float64(r.DurationUS) / 1e6)
}

// SocketErrors returns the connect, read, write and timeout errors.
func (r wrkResult) SocketErrors() int64 { return r.Connect + r.Read + r.Write + r.Timeout }

// wrkArgs is how the load is made: the same for every server.
type wrkArgs struct {
	threads     int
	connections int
	script      string // path of load.lua
}

// args returns wrk's command line for a run of d against url.
func (w wrkArgs) args(d time.Duration, url string) []string {
	secs := max(1, int(math.Ceil(d.Seconds())))
	return []string{
		"-t" + strconv.Itoa(w.threads), "-c" + strconv.Itoa(w.connections),
		"-d" + strconv.Itoa(secs) + "s", "--timeout", "2s", "--latency",
		"-s", w.script, url,
	}
}

// runWrk runs wrk against url for d and returns its figures and its whole
// output.
func runWrk(ctx context.Context, w wrkArgs, d time.Duration, url string) (wrkResult, string, error) {
	cmd := exec.CommandContext(ctx, "wrk", w.args(d, url)...)
	cmd.SysProcAttr = childAttr()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return wrkResult{}, out.String(), ctx.Err()
		}
		return wrkResult{}, out.String(), fmt.Errorf("wrk: %w:\n%s", err, out.String())
	}
	r, err := parseWrk(out.String())
	return r, out.String(), err
}

// parseWrk reads the wrk-result line that load.lua prints.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	for line := range strings.Lines(out) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "wrk-result ")
		if !ok {
			continue
		}
		fields := map[string]*int64{
			"requests": &r.Requests, "duration_us": &r.DurationUS, "bytes": &r.Bytes,
			"connect": &r.Connect, "read": &r.Read, "write": &r.Write, "status": &r.Status, "timeout": &r.Timeout,
			"p50_us": &r.P50US, "p90_us": &r.P90US, "p99_us": &r.P99US, "p999_us": &r.P999US, "max_us": &r.MaxUS,
		}
		seen := 0
		for _, kv := range strings.Fields(rest) {
			k, v, _ := strings.Cut(kv, "=")
			if k == "mean_us" {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return r, fmt.Errorf("wrk-result %s: %w", k, err)
				}
				r.MeanUS = f
				seen++
				continue
			}
			p, ok := fields[k]
			if !ok {
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk-result %s: %w", k, err)
			}
			*p = n
			seen++
		}
		if seen != len(fields)+1 {
			return r, fmt.Errorf("wrk-result: want %d fields, got %d in %q", len(fields)+1, seen, rest)
		}
		return r, nil
	}
	return r, errors.New("wrk printed no wrk-result line (was load.lua's done function run?):\n" + out)
}
