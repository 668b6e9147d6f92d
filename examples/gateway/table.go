package main

import (
	"errors"
	"io"
	"strings"
)

// A table is what the services and auth sections of a configuration make:
// every service's stack and instances, and who may call them. The gateway
// serves from one table at a time and swaps in a new one when it reloads
// its configuration; a call keeps the table it started with.
type table struct {
	services map[string]*serviceEntry
	names    []string // service names, sorted
	auth     *authenticator
	wsRoles  []string // roles besides the admin roles that may open /ws

	// closers release what the stacks hold (health checks, event
	// subscriptions, caches), in order, when the table is retired.
	closers []io.Closer
}

// lookup finds a service by its name in a URL, with or without the
// "-service" suffix.
func (t *table) lookup(name string) *serviceEntry {
	return t.services[strings.TrimSuffix(name, serviceSuffix)]
}

// mayUse reports whether who may see s's health and figures: its roles
// may call it, or who has an admin role.
func (t *table) mayUse(who principal, s *serviceEntry) bool {
	return allowed(who, s.cfg.Roles) || t.auth.isAdmin(who)
}

// start starts the active health checks of the services that have them.
// The table's close stops them.
func (t *table) start() {
	for _, name := range t.names {
		if s := t.services[name]; s.cfg.HealthCheck != nil {
			s.pool.Start()
		}
	}
}

// close releases what the table's stacks hold. Calls still running on the
// table finish normally: a closed balancer still picks, a closed cache
// still answers.
func (t *table) close() error {
	var errs []error
	for _, c := range t.closers {
		errs = append(errs, c.Close())
	}
	t.closers = nil
	return errors.Join(errs...)
}

// newTable builds the table of cfg's services and auth sections.
func (g *gateway) newTable(cfg *config) *table {
	t := &table{
		services: map[string]*serviceEntry{},
		auth:     newAuthenticator(cfg.Auth),
		wsRoles:  cfg.Server.WebSocket.Roles,
	}
	for _, name := range sortedKeys(cfg.Services) {
		t.services[name] = g.buildService(t, name, cfg.Services[name])
		t.names = append(t.names, name)
	}
	return t
}

// current returns the table the gateway serves from now.
func (g *gateway) current() *table { return g.table.Load() }
