package balance

import (
	"context"
	"time"
)

// A HealthChecker is an instance that can report its own health. Health
// returns nil when the instance can take calls. It must honour ctx, which
// carries the check's timeout and is canceled by [Balancer.Close].
type HealthChecker interface {
	Health(ctx context.Context) error
}

// Start starts the active health checks: one goroutine per instance that
// implements [HealthChecker], which checks it at once and then every check
// interval. An instance goes down after the unhealthy threshold of
// consecutive failed checks and comes back up after the healthy threshold of
// consecutive passed ones. Start does nothing if the Balancer is already
// started or closed, or if no instance implements HealthChecker.
func (b *Balancer[T]) Start() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started || b.closed {
		return
	}
	b.started = true
	ctx, stop := context.WithCancel(context.Background())
	b.stop = stop
	for i, in := range b.instances {
		if hc, ok := any(in.Value).(HealthChecker); ok {
			b.checks.Go(func() { b.checkLoop(ctx, i, hc) })
		}
	}
}

// Close stops the health checks and waits for them to return. The Balancer
// still picks afterwards, with each instance's health as last checked.
// Close always returns nil, and may be called more than once.
func (b *Balancer[T]) Close() error {
	b.mu.Lock()
	b.closed = true
	stop := b.stop
	b.mu.Unlock()
	if stop != nil {
		stop()
	}
	b.checks.Wait()
	return nil
}

func (b *Balancer[T]) checkLoop(ctx context.Context, i int, hc HealthChecker) {
	tick := time.NewTicker(b.cfg.checkInterval)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, b.cfg.checkTimeout)
		err := hc.Health(cctx)
		cancel()
		if ctx.Err() != nil {
			return // closed during the check: its result means nothing
		}
		b.recordCheck(i, err)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// recordCheck counts one health check of instance i and marks the instance
// down or up when a threshold is reached.
func (b *Balancer[T]) recordCheck(i int, err error) {
	now := b.cfg.clock.Now()
	b.mu.Lock()
	b.returnDueLocked(now)
	st := &b.states[i]
	st.checkErr = err
	if err != nil {
		st.checkOK = 0
		st.checkBad++
		if st.healthy && st.checkBad >= b.cfg.unhealthyThreshold {
			st.healthy = false
			b.emitLocked(Event{Kind: Down, Instance: b.instances[i].Name, Index: i, Time: now, Err: err})
			b.rebuildLocked(now)
		}
	} else {
		st.checkBad = 0
		st.checkOK++
		if !st.healthy && st.checkOK >= b.cfg.healthyThreshold {
			st.healthy = true
			b.slots[i].fails.Store(0)
			b.emitLocked(Event{Kind: Up, Instance: b.instances[i].Name, Index: i, Time: now})
			b.rebuildLocked(now)
		}
	}
	b.mu.Unlock()
	b.deliver()
}
