package main

import (
	"net/http"
	"strconv"
	"time"
)

// instanceStatus is one instance on the health page.
type instanceStatus struct {
	Name                string     `json:"name"`
	Kind                string     `json:"kind"`
	URL                 string     `json:"url,omitempty"`
	Healthy             bool       `json:"healthy"`
	State               string     `json:"state"` // healthy, down or ejected
	EjectedUntil        *time.Time `json:"ejected_until,omitempty"`
	CheckError          string     `json:"check_error,omitempty"`
	InFlight            int        `json:"in_flight"`
	Calls               uint64     `json:"calls"`
	Successes           uint64     `json:"successes"`
	Failures            uint64     `json:"failures"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	Ejections           int        `json:"ejections"`
	Fault               *faultJSON `json:"fault,omitempty"`
}

// serviceHealth is one service on the health pages.
type serviceHealth struct {
	Service          string           `json:"service"`
	Status           string           `json:"status"` // up, degraded or down
	Breaker          string           `json:"breaker,omitempty"`
	HealthyInstances int              `json:"healthy_instances"`
	TotalInstances   int              `json:"instances"`
	Instances        []instanceStatus `json:"instance_details,omitempty"`
}

// health summarises s: down when it cannot serve (no healthy instance, or
// its breaker open), degraded when some instances are out.
func (s *serviceEntry) health(details bool) serviceHealth {
	insts := s.instanceStatuses()
	h := serviceHealth{Service: s.name, Breaker: s.breakerState(), TotalInstances: len(insts)}
	for _, in := range insts {
		if in.Healthy {
			h.HealthyInstances++
		}
	}
	switch {
	case h.HealthyInstances == 0 || h.Breaker == "open":
		h.Status = "down"
	case h.HealthyInstances < h.TotalInstances || h.Breaker == "half-open":
		h.Status = "degraded"
	default:
		h.Status = "up"
	}
	if details {
		h.Instances = insts
	}
	return h
}

// handleHealth serves GET /health: every service's status, 200 when every
// service can serve, else 503. It needs no token, as load balancers and
// uptime checks call it; instance details are on the authenticated
// per-service page.
func (g *gateway) handleHealth(w http.ResponseWriter, _ *http.Request) {
	t := g.current()
	status, code := "ok", http.StatusOK
	services := make([]serviceHealth, 0, len(t.names))
	for _, name := range t.names {
		h := t.services[name].health(false)
		if h.Status == "down" {
			status, code = "unavailable", http.StatusServiceUnavailable
		}
		services = append(services, h)
	}
	writeJSON(w, code, map[string]any{"status": status, "services": services})
}

// handleServiceHealth serves GET /api/v1/services/{service}/health: the
// service's instances and their health. 200 when it can serve, else 503.
func (g *gateway) handleServiceHealth(w http.ResponseWriter, r *http.Request) {
	s, _, ok := g.authorizedService(g.current(), w, r)
	if !ok {
		return
	}
	h := s.health(true)
	code := http.StatusOK
	if h.Status == "down" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, h)
}

// handleLiveness serves GET /healthz: the process is up. It touches
// nothing else.
func (g *gateway) handleLiveness(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
}

// handleReadiness serves GET /readyz: 200 once start-up is done, 503 before
// and while draining.
func (g *gateway) handleReadiness(w http.ResponseWriter, _ *http.Request) {
	if g.ready.Load() {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		return
	}
	msg := "starting"
	if g.draining.Load() {
		msg = "draining: shutting down"
	}
	writeError(w, &apiError{Status: http.StatusServiceUnavailable, Code: codeNotReady, Message: msg})
}

// authenticated authenticates the caller of an API route by the tokens of
// t and puts its name in the call's access log line, or answers 401 itself.
func authenticated(t *table, w http.ResponseWriter, r *http.Request) (principal, bool) {
	who, aerr := t.auth.authenticate(r, "")
	if aerr != nil {
		writeError(w, aerr)
		return who, false
	}
	info(r.Context()).principal = who.Name
	return who, true
}

// authorizedService authenticates the caller, finds the service of the
// request's path and checks that the caller's role may use it (or is an
// admin role), answering 401, 404 or 403 itself when not.
func (g *gateway) authorizedService(t *table, w http.ResponseWriter, r *http.Request) (*serviceEntry, principal, bool) {
	who, ok := authenticated(t, w, r)
	if !ok {
		return nil, who, false
	}
	s := t.lookup(r.PathValue("service"))
	if s == nil {
		writeError(w, &apiError{Status: http.StatusNotFound, Code: codeUnknownService,
			Message: "no service named " + strconv.Quote(clean(r.PathValue("service"), 64))})
		return nil, who, false
	}
	info(r.Context()).service = s.name
	if !t.mayUse(who, s) {
		writeError(w, &apiError{Status: http.StatusForbidden, Code: "forbidden",
			Message: "role " + strconv.Quote(who.Role) + " may not use " + s.name})
		return nil, who, false
	}
	return s, who, true
}

// breakerState names the state of s's breaker ("closed", "half-open" or
// "open"), or "" when it has none. Reading it moves an open breaker whose
// cool-down is over to half-open, and announces that.
func (s *serviceEntry) breakerState() string {
	if s.breaker == nil {
		return ""
	}
	return s.breaker.State().String()
}

// instanceStatuses reports each instance's health as the balancer sees it.
func (s *serviceEntry) instanceStatuses() []instanceStatus {
	states := s.pool.Snapshot()
	out := make([]instanceStatus, 0, len(states))
	for i, st := range states {
		in := s.instances[i]
		is := instanceStatus{
			Name: in.name, Kind: in.kind(), URL: in.url, Healthy: st.Eligible,
			InFlight: st.InFlight, Calls: st.Calls, Successes: st.Successes, Failures: st.Failures,
			ConsecutiveFailures: st.ConsecutiveFailures, Ejections: st.Ejections,
		}
		switch {
		case !st.Healthy:
			is.State = "down"
		case !st.EjectedUntil.IsZero():
			is.State = "ejected"
			until := st.EjectedUntil.UTC()
			is.EjectedUntil = &until
		default:
			is.State = "healthy"
		}
		if st.CheckErr != nil {
			is.CheckError = st.CheckErr.Error()
		}
		if in.demo != nil {
			is.Fault = in.demo.currentFault().json()
		}
		out = append(out, is)
	}
	return out
}
