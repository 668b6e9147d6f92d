package main

import (
	"context"
	"time"

	"github.com/proxykit/proxy/balance"
	"github.com/proxykit/proxy/breaker"
	"github.com/proxykit/proxy/metrics"
)

// onBreakerEvent logs a breaker's change of state, reports it to the
// metrics and puts it on the event stream.
func (g *gateway) onBreakerEvent(sh *sharedLayers, service string, ev breaker.Event) {
	g.log.Info("breaker "+ev.To.String(), "service", service, "from", ev.From.String(), "to", ev.To.String())
	state := metrics.BreakerClosed
	switch ev.To {
	case breaker.Open:
		state = metrics.BreakerOpen
	case breaker.HalfOpen:
		state = metrics.BreakerHalfOpen
	}
	sh.metrics.SetBreakerState(service, state)
	g.hub.publish(event{Type: "breaker", Time: ev.At.UTC(), Data: map[string]string{
		"service": service, "from": ev.From.String(), "to": ev.To.String(),
	}})
}

// onInstanceEvent logs a change in an instance's state and puts it on the
// event stream.
func (g *gateway) onInstanceEvent(sh *sharedLayers, service string, ev balance.Event) {
	sh.metrics.SetInstanceHealthy(service, ev.Instance, ev.Kind == balance.Up || ev.Kind == balance.Returned)
	attrs := []any{"service", service, "instance", ev.Instance, "change", ev.Kind.String()}
	if ev.Err != nil {
		attrs = append(attrs, "err", ev.Err)
	}
	g.log.Info("instance "+ev.Kind.String(), attrs...)
	data := map[string]any{"service": service, "instance": ev.Instance, "change": ev.Kind.String(),
		"healthy": ev.Kind == balance.Up || ev.Kind == balance.Returned}
	if !ev.Until.IsZero() {
		data["until"] = ev.Until.UTC()
	}
	if ev.Err != nil {
		data["error"] = ev.Err.Error()
	}
	g.hub.publish(event{Type: "health", Time: time.Now().UTC(), Data: data})
}

// startBackground starts the gateway's background work: the active health
// checks and the stats snapshot on the event stream. The returned channel
// is closed when all of it has stopped after ctx ends.
func (g *gateway) startBackground(ctx context.Context) <-chan struct{} {
	for _, name := range g.names {
		if s := g.services[name]; s.cfg.HealthCheck != nil {
			s.pool.Start() // stopped by the pool's Close, in closeAll
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(g.cfg.Server.WebSocket.StatsInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if g.hub.active() {
					g.hub.publish(event{Type: "stats", Time: time.Now().UTC(), Data: g.statsSnapshot()})
				}
			}
		}
	}()
	return done
}
