package main

import (
	"errors"
	"reflect"
	"time"
)

// reload swaps in the services, auth and server.websocket.roles sections
// of cfg: new stacks, new instances, new tokens and roles. Demo services
// keep their data (payments, users, orders, stock) when their kind is
// unchanged; rate limits, caches, breakers and instance health start
// afresh. Calls under way finish on the stacks they started with. The other
// sections (server, audit, log, tracing, redis, seed) take effect only on a
// restart; reload logs which of them differ. cfg must have passed
// loadConfig.
func (g *gateway) reload(cfg *config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errGatewayClosed
	}
	if g.shared.redis == nil && usesRedis(cfg) {
		return errNoRedis
	}
	if restart := restartSections(g.cfg, cfg); len(restart) > 0 {
		g.log.Warn("configuration reload: these sections change only on a restart", "sections", restart)
	}
	t := g.newTable(cfg)
	if g.serving {
		t.start()
	}
	old := g.table.Swap(t)
	for _, name := range old.names {
		s := old.services[name]
		for _, in := range s.instances {
			if ns := t.services[name]; ns == nil || !ns.hasInstance(in.name) {
				g.shared.metrics.ForgetInstance(name, in.name)
			}
		}
	}
	g.reloads.WithLabelValues("success").Inc()
	g.log.Info("configuration reloaded", "services", t.names)
	g.hub.publish(event{Type: "reload", Time: time.Now().UTC(), Data: map[string]any{"result": "success", "services": t.names}})
	if err := old.close(); err != nil {
		g.log.Warn("configuration reload: releasing the previous stacks", "err", err)
	}
	return nil
}

// reloadFailed counts and reports a configuration that could not be read.
func (g *gateway) reloadFailed(err error) {
	g.reloads.WithLabelValues("error").Inc()
	g.log.Error("configuration reload failed; serving the previous one", "err", err)
	g.hub.publish(event{Type: "reload", Time: time.Now().UTC(), Data: map[string]any{"result": "error", "error": err.Error()}})
}

// restartSections names the sections of next that differ from cur and that
// reload does not apply.
func restartSections(cur, next *config) []string {
	var out []string
	curServer, nextServer := cur.Server, next.Server
	curServer.WebSocket.Roles, nextServer.WebSocket.Roles = nil, nil // reloadable
	for _, s := range []struct {
		name      string
		cur, next any
	}{
		{"server", curServer, nextServer},
		{"audit", cur.Audit, next.Audit},
		{"log", cur.Log, next.Log},
		{"tracing", cur.Tracing, next.Tracing},
		{"redis", cur.Redis, next.Redis},
		{"seed", cur.Seed, next.Seed},
	} {
		if !reflect.DeepEqual(s.cur, s.next) {
			out = append(out, s.name)
		}
	}
	return out
}

// hasInstance reports whether s has an instance named name.
func (s *serviceEntry) hasInstance(name string) bool {
	for _, in := range s.instances {
		if in.name == name {
			return true
		}
	}
	return false
}

// errGatewayClosed is what reload answers once the gateway has shut down.
var errGatewayClosed = errors.New("gateway: shut down")
