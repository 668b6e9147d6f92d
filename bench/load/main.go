// Command load is the gateway load test: it measures what the example
// gateway (examples/gateway) costs over plain net/http on real HTTP over
// loopback, with wrk as the load generator.
//
// From the repository root, one command runs everything:
//
//	go run ./bench/load                      # both scenarios, 30 s per server
//	go run ./bench/load -duration 60s -scenarios local    # the memory check
//	go run ./bench/load -profile local       # and a CPU profile of the gateway
//	go run ./bench/load -scenarios= -profile local         # the profile alone
//	go run ./bench/load -rounds 3            # servers taking turns, medians
//
// (With bench/ its own module, run it as go -C bench run ./load.)
//
// It builds the gateway, then for each scenario starts the servers as
// separate processes on free 127.0.0.1 ports, one at a time, and drives
// each with the same wrk load for the same time after a warm-up:
//
//   - local: the gateway with one in-process demo instance (gateway.yaml)
//     next to a bare net/http server that decodes and encodes the same JSON
//     envelope with no layers and does the same stock read;
//   - remote: the gateway in front of a backend process, the bare server
//     (gateway-remote.yaml), next to an httputil.ReverseProxy in front of the
//     same backend.
//
// For each server it reports requests per second, p50 and p99 latency,
// socket errors and non-2xx answers from wrk; the server process's CPU time
// per request, its peak RSS (VmHWM) and its RSS sampled through the run
// (first third against last third: flat or growing); and the ratios of the
// gateway to its baseline. With -rounds the servers of a scenario take
// turns several times, so that a busy machine's changing load falls on
// both, and the ratios come for each round and as medians. It prints the
// results as Markdown, ready for BENCHMARKS.md.
//
// With -profile it then runs the scenario's baseline and the gateway again,
// each serving net/http/pprof on a listener of its own (the gateway's added
// with go build -overlay, leaving its sources alone), and prints the top of
// their CPU profiles and their allocations per request.
//
// wrk shares the machine's cores with the server it drives: on a 2-core
// machine, -t1 leaves the server about one core. Every process it starts is
// stopped when it ends, on an error or on Ctrl-C; the kernel kills them if
// it dies.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var (
	//go:embed gateway.yaml
	gatewayLocalYAML string
	//go:embed gateway-remote.yaml
	gatewayRemoteYAML string
	//go:embed load.lua
	loadLua string
	//go:embed testdata/pprof_overlay.go
	pprofOverlay string
)

// requestBody is what load.lua sends; the program sends it once to each
// server before the load to check the answer.
const requestBody = `{"id":"load-1","user_id":"user-1","data":{"action":"stock","sku":"SKU-001"}}`

// placeholderBackend is the backend address in gateway-remote.yaml, which
// the program replaces with its backend's.
const placeholderBackend = "127.0.0.1:8081"

// The scenarios.
const (
	scenarioLocal  = "local"
	scenarioRemote = "remote"
)

// options are the command line's settings.
type options struct {
	duration    time.Duration
	warmup      time.Duration
	connections int
	threads     int
	rounds      int
	gogc        string // GOGC for every server, or "" to leave it
	scenarios   []string
	profile     string // a scenario whose gateway to profile, or ""
	profileOut  string
	root        string
	verbose     bool
	command     string // the command line, for the report
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// errUsage marks a command line that could not be understood.
var errUsage = errors.New("usage error")

// run is the whole program. With -serve it is one of the servers the load
// test starts; otherwise it is the load test.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "measured `time` per server (the memory check wants 60s)")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured load before each measured run")
	fs.IntVar(&o.connections, "connections", 16, "wrk's open connections (-c)")
	fs.IntVar(&o.threads, "threads", 1, "wrk's threads (-t); they share the cores with the server")
	fs.IntVar(&o.rounds, "rounds", 1, "`times` to run each scenario, the servers taking turns, for a median on a busy machine")
	fs.StringVar(&o.gogc, "gogc", "", "GOGC `value` for every server process (a percentage or off; default: the environment's)")
	scenarios := fs.String("scenarios", "local,remote", "comma-separated `list` of scenarios: local (in-process instance), remote (remote instance); empty for -profile alone")
	fs.StringVar(&o.profile, "profile", "", "after the scenarios, profile the gateway of this `scenario` (local or remote) under the same load")
	fs.StringVar(&o.profileOut, "profile-out", filepath.Join(os.TempDir(), "proxy-load-gateway.pprof"), "where the CPU profile is written")
	fs.StringVar(&o.root, "root", "", "the proxy repository's root (default: found from the working directory)")
	fs.BoolVar(&o.verbose, "v", false, "print wrk's output and each server's first answer")
	serveKind := fs.String("serve", "", "internal: run a server (bare or revproxy) instead of the load test")
	addr := fs.String("addr", "", "internal: the -serve server's listen address")
	backend := fs.String("backend", "", "internal: the revproxy server's backend URL")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: go run ./bench/load [flags]\n\nThe gateway load test: see the package documentation.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *serveKind != "" {
		return runServer(ctx, *serveKind, *addr, *backend)
	}
	for s := range strings.SplitSeq(*scenarios, ",") {
		if s = strings.TrimSpace(s); s == "" && *scenarios == "" {
			break // only -profile
		}
		if s != scenarioLocal && s != scenarioRemote {
			return fmt.Errorf("%w: -scenarios: want local and/or remote, got %q", errUsage, s)
		}
		if !slices.Contains(o.scenarios, s) {
			o.scenarios = append(o.scenarios, s)
		}
	}
	switch {
	case len(o.scenarios) == 0 && o.profile == "":
		return fmt.Errorf("%w: -scenarios is empty and there is no -profile: nothing to run", errUsage)
	case o.profile != "" && o.profile != scenarioLocal && o.profile != scenarioRemote:
		return fmt.Errorf("%w: -profile: want local or remote, got %q", errUsage, o.profile)
	case o.duration < time.Second:
		return fmt.Errorf("%w: -duration: want at least 1s, got %v", errUsage, o.duration)
	case o.warmup < 0:
		return fmt.Errorf("%w: -warmup: must not be negative, got %v", errUsage, o.warmup)
	case o.gogc != "" && o.gogc != "off" && !isPercent(o.gogc):
		return fmt.Errorf("%w: -gogc: want a whole number or off, got %q", errUsage, o.gogc)
	case o.rounds < 1:
		return fmt.Errorf("%w: -rounds: want at least 1, got %d", errUsage, o.rounds)
	case o.threads < 1 || o.connections < o.threads:
		return fmt.Errorf("%w: want 1 <= -threads <= -connections, got %d and %d", errUsage, o.threads, o.connections)
	}
	if !strings.Contains(loadLua, requestBody) {
		return errors.New("load.lua does not send requestBody: keep the two the same")
	}
	var set []string
	fs.Visit(func(f *flag.Flag) {
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			set = append(set, "-"+f.Name+"="+f.Value.String())
			return
		}
		set = append(set, "-"+f.Name+" "+f.Value.String())
	})
	o.command = strings.Join(append([]string{"go run ./bench/load"}, set...), " ")
	return loadTest(ctx, o, stdout, stderr)
}

// A session is one run of the load test: its temporary directory, the
// gateway binary, the processes it started and the load.
type session struct {
	opts    options
	root    string
	dir     string
	self    string // this program, for -serve
	gateway string // the gateway binary
	procs   procGroup
	wrk     wrkArgs
	log     io.Writer
}

// loadTest runs the scenarios and prints the report.
func loadTest(ctx context.Context, o options, stdout, stderr io.Writer) (err error) {
	wrkVersion, err := checkWrk()
	if err != nil {
		return err
	}
	root, err := findRoot(o.root)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "bench", "go.mod")); err == nil {
		o.command = strings.Replace(o.command, "go run ./bench/load", "go -C bench run ./load", 1)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "proxy-load-")
	if err != nil {
		return err
	}
	s := &session{opts: o, root: root, dir: dir, self: self, log: stderr, procs: procGroup{dir: dir}}
	if o.gogc != "" {
		s.procs.env = []string{"GOGC=" + o.gogc}
	}
	defer func() {
		s.procs.stopAll()
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = rerr
		}
	}()
	s.wrk = wrkArgs{threads: o.threads, connections: o.connections, script: filepath.Join(dir, "load.lua")}
	if err := os.WriteFile(s.wrk.script, []byte(loadLua), 0o644); err != nil {
		return err
	}
	s.logf("building the gateway (%s)", filepath.Join(root, "examples", "gateway"))
	if s.gateway, err = s.buildGateway(ctx, "gateway", nil); err != nil {
		return err
	}
	m := readMachine(wrkVersion)
	var results []result
	for round := 1; round <= o.rounds; round++ {
		for _, sc := range o.scenarios {
			var rs []result
			var err error
			switch sc {
			case scenarioLocal:
				rs, err = s.runLocal(ctx)
			case scenarioRemote:
				rs, err = s.runRemote(ctx)
			}
			if err != nil {
				return fmt.Errorf("scenario %s: %w", sc, err)
			}
			for i := range rs {
				rs[i].round = round
			}
			results = append(results, rs...)
		}
	}
	m.loadAfter = readLoadAvg()
	var prof *profile
	if o.profile != "" {
		if prof, err = s.runProfile(ctx, o.profile); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
	}
	writeReport(stdout, o, m, results, prof)
	return nil
}

// logf prints a progress line.
func (s *session) logf(format string, args ...any) {
	fmt.Fprintf(s.log, "load: "+format+"\n", args...)
}

// isPercent reports whether s is a whole number from 0, as GOGC takes.
func isPercent(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0
}

// findRoot returns dir, or when it is empty the nearest directory at or
// above the working directory whose go.mod is the proxy module's.
func findRoot(dir string) (string, error) {
	isRoot := func(d string) bool {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err != nil {
			return false
		}
		for line := range strings.Lines(string(b)) {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
				return f[1] == "github.com/proxykit/proxy"
			}
		}
		return false
	}
	if dir != "" {
		if !isRoot(dir) {
			return "", fmt.Errorf("-root %s: no go.mod of github.com/proxykit/proxy there", dir)
		}
		return filepath.Abs(dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if isRoot(d) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod of github.com/proxykit/proxy at or above %s: run from the repository, or pass -root", wd)
		}
	}
}
