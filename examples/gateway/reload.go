package main

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"time"
)

// reload swaps in the services, auth and server.websocket.roles sections
// of cfg: new stacks, new instances, new tokens and roles. Demo services
// keep their data (payments, users, orders, stock) when their kind is
// unchanged; rate limits, caches, breakers and instance health start
// afresh. Calls under way finish on the stacks they started with; stream
// clients that the new tokens and roles no longer allow are disconnected.
// The other sections (server, audit, log, tracing, redis, seed) take effect
// only on a restart; reload logs which of them differ. cfg must have passed
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
	g.hub.recheck(t)
	for _, name := range old.names {
		s := old.services[name]
		for _, in := range s.instances {
			if ns := t.services[name]; ns == nil || !ns.hasInstance(in.name) {
				g.shared.metrics.ForgetInstance(name, in.name)
			}
		}
	}
	g.reloads.WithLabelValues("success").Inc()
	g.lastReload.SetToCurrentTime()
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

// handleReload serves POST /api/v1/admin/reload, for admin roles: the
// configuration file is read again and reloaded, as on SIGHUP. The answer
// names the services now served and the changed sections that need a
// restart; a file that cannot be used is refused with 422 and every
// problem in it, located by line and column, and the configuration stays
// as it was.
func (g *gateway) handleReload(w http.ResponseWriter, r *http.Request) {
	t := g.current()
	who, ok := authenticated(t, w, r)
	if !ok {
		return
	}
	if !t.auth.isAdmin(who) {
		writeError(w, &apiError{Status: http.StatusForbidden, Code: "forbidden",
			Message: "only admin roles may reload the configuration"})
		return
	}
	ci := info(r.Context())
	w.Header().Set("Cache-Control", "no-store")
	next, err := g.reloadFile()
	if errors.Is(err, errGatewayClosed) {
		writeError(w, &apiError{Status: http.StatusServiceUnavailable, Code: codeUnavailable, Message: err.Error()})
		return
	}
	if err != nil {
		ci.logger().Warn("configuration reload refused", "err", err)
		writeJSON(w, http.StatusUnprocessableEntity, reloadErrorBody(err))
		return
	}
	ci.logger().Info("configuration reloaded on request", "principal", who.Name)
	writeJSON(w, http.StatusOK, map[string]any{
		"result":           "success",
		"services":         g.current().names,
		"restart_required": restartSections(g.cfg, next),
	})
}

// configProblem is one problem of a refused configuration, as the reload
// route answers it.
type configProblem struct {
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// reloadErrorBody is the answer to a reload refused with err: the gateway's
// error object, code invalid_config, with the file's problems listed.
func reloadErrorBody(err error) any {
	type body struct {
		Code     string          `json:"code"`
		Message  string          `json:"message"`
		Problems []configProblem `json:"problems"`
	}
	b := body{Code: codeInvalidConfig, Message: err.Error(), Problems: []configProblem{}}
	var ce *configError
	if errors.As(err, &ce) {
		b.Message = fmt.Sprintf("%s: %d problem(s); the configuration is unchanged", ce.File, len(ce.Problems))
		for _, p := range ce.Problems {
			b.Problems = append(b.Problems, configProblem{Line: p.Line, Column: p.Column, Path: p.Path, Message: p.Msg})
		}
	} else {
		b.Problems = append(b.Problems, configProblem{Message: err.Error()})
		b.Message += "; the configuration is unchanged"
	}
	return map[string]body{"error": b}
}
