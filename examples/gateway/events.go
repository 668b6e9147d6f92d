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
func (g *gateway) onBreakerEvent(service string, ev breaker.Event) {
	sh := g.shared
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
func (g *gateway) onInstanceEvent(service string, ev balance.Event) {
	sh := g.shared
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

// startBackground starts the stats snapshot on the event stream. The
// returned channel is closed when it has stopped after ctx ends.
func (g *gateway) startBackground(ctx context.Context) <-chan struct{} {
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
					t := g.current()
					g.hub.publish(event{Type: "stats", Time: time.Now().UTC(), Data: g.statsSnapshot(t, t.names)})
				}
			}
		}
	}()
	return done
}
