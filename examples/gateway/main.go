// Command gateway is the example API gateway of github.com/proxykit/proxy:
// an HTTP API in front of services, each wrapped in the library's stack of
// caching, rate limiting, circuit breaking, load balancing with health
// checks, retries, timeouts, audit logging and metrics, configured in YAML.
//
// Usage:
//
//	gateway [-config file.yaml] [-addr host:port]
//	gateway check -config file.yaml
//
// Without -config it runs an embedded demo configuration with five
// in-process services (payment, notification, user, order, inventory) on
// localhost:8080. See README.md for the routes.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the process at once
	}()
	// The Redis client logs through a package-level logger; main, the one
	// owner of the process, points it at the gateway's JSON log format.
	redis.SetLogger(redisLogger{slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("log", "redis")})
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
