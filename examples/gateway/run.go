package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

//go:embed default.yaml
var defaultConfig []byte

// defaultConfigName names the embedded configuration in messages.
const defaultConfigName = "default.yaml (embedded)"

// errUsage marks a command line that could not be understood; main exits 2.
var errUsage = errors.New("usage error")

// run is the whole program: main only calls it, so tests can drive it with
// their own arguments, writers and context. `gateway [-config f] [-addr a]`
// serves until ctx ends, reloading the file on SIGHUP; `gateway check
// -config f` validates a file.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "check" {
		return runCheck(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration `file` (default: the embedded demo configuration)")
	addr := fs.String("addr", "", "listen address `host:port`, overriding server.addr")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage:\n  gateway [-config file.yaml] [-addr host:port]\n  gateway check -config file.yaml\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	cfg, name, err := readConfig(*configPath)
	if err != nil {
		return err
	}
	if *addr != "" {
		if _, port, err := net.SplitHostPort(*addr); err != nil {
			return fmt.Errorf("%w: -addr: want host:port, got %q", errUsage, *addr)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return fmt.Errorf("%w: -addr: bad port %q", errUsage, port)
		}
		cfg.Server.Addr = *addr
	}
	log := newLogger(stderr, cfg.Log.Level)
	g, err := newGateway(cfg, log, withStdout(stdout), withConfigFile(*configPath, *addr))
	if err != nil {
		return err
	}
	// SIGHUP reloads the configuration file; registered before the
	// listener opens, so that no SIGHUP after start-up kills the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		_ = g.closeAll()
		return err
	}
	log.Info("listening", "addr", ln.Addr().String(), "config", name)
	stop := make(chan struct{})
	reloader := make(chan struct{})
	go func() {
		defer close(reloader)
		for {
			select {
			case <-stop:
				return
			case <-hup:
				_, _ = g.reloadFile() // reloadFile reports a failure itself
			}
		}
	}()
	err = g.serve(ctx, ln)
	close(stop)
	<-reloader
	return err
}

// reloadFile reads the configuration file again (the embedded one when the
// gateway runs without -config) and reloads it, or reports why it could
// not: in the log, on the event stream and in the reload metrics, and to
// the caller. It returns the configuration it reloaded. The -addr override
// applies to the new file too.
func (g *gateway) reloadFile() (*config, error) {
	next, _, err := readConfig(g.opts.configFile)
	if err == nil {
		if g.opts.addr != "" {
			next.Server.Addr = g.opts.addr
		}
		err = g.reload(next)
	}
	if err != nil {
		g.reloadFailed(err)
		return nil, err
	}
	return next, nil
}

// readConfig loads the file at path, or the embedded default when path is
// empty.
func readConfig(path string) (*config, string, error) {
	if path == "" {
		cfg, err := loadConfig(defaultConfig, defaultConfigName)
		return cfg, defaultConfigName, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, path, err
	}
	cfg, err := loadConfig(data, path)
	return cfg, path, err
}

// runCheck validates a configuration file, printing every problem, one per
// line as file:line:column: path: message.
func runCheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gateway check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration `file` to check (default: the embedded one)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	cfg, name, err := readConfig(*configPath)
	var ce *configError
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			loc := ce.File
			if p.Line > 0 {
				loc = fmt.Sprintf("%s:%d:%d", ce.File, p.Line, p.Column)
			}
			msg := p.Msg
			if p.Path != "" {
				msg = p.Path + ": " + msg
			}
			fmt.Fprintf(stderr, "%s: %s\n", loc, msg)
		}
		return fmt.Errorf("%s: %d problem(s)", name, len(ce.Problems))
	}
	if err != nil {
		return err
	}
	n := 0
	for _, s := range cfg.Services {
		n += len(s.Instances)
	}
	fmt.Fprintf(stdout, "%s: OK (%d services, %d instances)\n", name, len(cfg.Services), n)
	return nil
}

// newLogger returns the gateway's JSON logger at level.
func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated: debug, info, warn or error
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
