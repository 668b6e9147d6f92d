package main

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"
)

// faultJSON is a staged fault as the admin route reads and writes it.
type faultJSON struct {
	Latency   string  `json:"latency,omitempty"`
	Jitter    string  `json:"jitter,omitempty"`
	ErrorRate float64 `json:"error_rate,omitempty"`
	Down      bool    `json:"down,omitempty"`
}

func (f fault) json() *faultJSON {
	if f == (fault{}) {
		return nil
	}
	fj := &faultJSON{ErrorRate: f.ErrorRate, Down: f.Down}
	if f.Latency > 0 {
		fj.Latency = f.Latency.String()
	}
	if f.Jitter > 0 {
		fj.Jitter = f.Jitter.String()
	}
	return fj
}

// maxStagedLatency bounds a staged latency.
const maxStagedLatency = 10 * time.Minute

// parse checks a fault sent to the admin route.
func (fj *faultJSON) parse() (fault, *apiError) {
	var f fault
	for _, d := range []struct {
		field string
		in    string
		out   *time.Duration
	}{{"latency", fj.Latency, &f.Latency}, {"jitter", fj.Jitter, &f.Jitter}} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil || v < 0 || v > maxStagedLatency {
			return f, badRequest(d.field, "want a duration from 0s to %v such as 250ms or 2s", maxStagedLatency)
		}
		*d.out = v
	}
	if math.IsNaN(fj.ErrorRate) || fj.ErrorRate < 0 || fj.ErrorRate > 1 {
		return f, badRequest("error_rate", "must be from 0 to 1")
	}
	f.ErrorRate, f.Down = fj.ErrorRate, fj.Down
	return f, nil
}

// adminInstance authenticates an admin and finds the demo instance of the
// request's path.
func (g *gateway) adminInstance(w http.ResponseWriter, r *http.Request) (*instanceEntry, bool) {
	t := g.current()
	s, who, ok := g.authorizedService(t, w, r)
	if !ok {
		return nil, false
	}
	if !t.auth.isAdmin(who) {
		writeError(w, &apiError{Status: http.StatusForbidden, Code: "forbidden",
			Message: "only admin roles may stage faults"})
		return nil, false
	}
	name := r.PathValue("instance")
	for _, in := range s.instances {
		if in.name != name {
			continue
		}
		if in.demo == nil {
			writeError(w, badRequest("instance", "%s is a remote instance; faults are staged on demo instances", in.name))
			return nil, false
		}
		return in, true
	}
	writeError(w, &apiError{Status: http.StatusNotFound, Code: codeNotFound,
		Message: s.name + " has no instance named " + strconv.Quote(clean(name, 64))})
	return nil, false
}

// handleSetFault serves PUT .../instances/{instance}/fault: stage latency,
// failures or an outage on a demo instance, for demonstrations and tests.
// Body: {"latency":"2s","jitter":"100ms","error_rate":0.5,"down":false}.
func (g *gateway) handleSetFault(w http.ResponseWriter, r *http.Request) {
	in, ok := g.adminInstance(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
	if err != nil {
		writeError(w, bodyReadError(err))
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var fj faultJSON
	if err := dec.Decode(&fj); err != nil || dec.More() {
		writeError(w, badRequest("", `want {"latency":"2s","jitter":"0s","error_rate":0.5,"down":false}`))
		return
	}
	f, aerr := fj.parse()
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	in.demo.setFault(f)
	info(r.Context()).logger().Info("fault staged", "instance", in.name, "fault", fj)
	writeJSON(w, http.StatusOK, map[string]any{"instance": in.name, "fault": f.json()})
}

// handleClearFault serves DELETE .../instances/{instance}/fault: the
// instance heals.
func (g *gateway) handleClearFault(w http.ResponseWriter, r *http.Request) {
	in, ok := g.adminInstance(w, r)
	if !ok {
		return
	}
	in.demo.setFault(fault{})
	info(r.Context()).logger().Info("fault cleared", "instance", in.name)
	writeJSON(w, http.StatusOK, map[string]any{"instance": in.name, "fault": nil})
}
