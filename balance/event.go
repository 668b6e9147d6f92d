package balance

import (
	"fmt"
	"sync/atomic"
	"time"
)

// A Kind says what happened to an instance.
type Kind uint8

// The kinds of [Event].
const (
	// Down is an instance the active health checks found unhealthy.
	Down Kind = iota
	// Up is a down instance the active health checks found healthy again.
	Up
	// Ejected is an instance taken out of the pool for failing calls.
	Ejected
	// Returned is an ejected instance back in the pool.
	Returned
)

// String returns "down", "up", "ejected" or "returned".
func (k Kind) String() string {
	switch k {
	case Down:
		return "down"
	case Up:
		return "up"
	case Ejected:
		return "ejected"
	case Returned:
		return "returned"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// An Event is a change in an instance's state.
type Event struct {
	// Kind says what happened.
	Kind Kind
	// Instance is the instance's name, and Index its position in the
	// instances given to [New].
	Instance string
	Index    int
	// Time is when it happened, on the Balancer's clock.
	Time time.Time
	// Until is when an [Ejected] instance comes back; otherwise zero.
	Until time.Time
	// Err is the failed health check that took a [Down] instance down;
	// otherwise nil.
	Err error
}

// String describes the event, as in "payment-2 ejected until 12:00:30".
func (e Event) String() string {
	switch {
	case e.Kind == Ejected:
		return e.Instance + " ejected until " + e.Until.Format(time.TimeOnly)
	case e.Err != nil:
		return e.Instance + " " + e.Kind.String() + ": " + e.Err.Error()
	}
	return e.Instance + " " + e.Kind.String()
}

type subscriber struct {
	fn       func(Event)
	canceled atomic.Bool
}

// pending is an event waiting for delivery, with the subscribers it goes to.
type pending struct {
	ev   Event
	subs []*subscriber
}

// Subscribe calls fn with every state change from now on, in the order the
// changes happened, until cancel is called. fn runs on the goroutine that
// caused the change (a call's [Lease.Done], a [Balancer.Pick], a health
// check), after the Balancer's lock is released; the calls to the
// subscribers never overlap. fn may use the Balancer, except to Close it,
// and should return quickly, as it holds up the delivery of later events.
// It should not panic: a panic reaches the caller whose call was delivering,
// and the events still waiting are delivered by the next call that changes
// the state or takes a Snapshot. After
// cancel returns fn is not called again, except by a delivery already under
// way. Subscribe panics if fn is nil.
func (b *Balancer[T]) Subscribe(fn func(Event)) (cancel func()) {
	if fn == nil {
		panic("balance: Subscribe(nil)")
	}
	s := &subscriber{fn: fn}
	b.mu.Lock()
	b.subs = append(b.subs[:len(b.subs):len(b.subs)], s)
	b.mu.Unlock()
	return func() {
		s.canceled.Store(true)
		b.mu.Lock()
		defer b.mu.Unlock()
		for i, x := range b.subs {
			if x == s {
				subs := make([]*subscriber, 0, len(b.subs)-1)
				b.subs = append(append(subs, b.subs[:i]...), b.subs[i+1:]...)
				return
			}
		}
	}
}

// emitLocked queues ev for the current subscribers.
func (b *Balancer[T]) emitLocked(ev Event) {
	if len(b.subs) > 0 {
		b.pending = append(b.pending, pending{ev: ev, subs: b.subs})
	}
}

// deliver hands the queued events to their subscribers, outside the lock.
// One goroutine delivers at a time, so events arrive in the order they
// were queued; a goroutine that finds a delivery under way leaves its
// events to it.
func (b *Balancer[T]) deliver() {
	for {
		b.mu.Lock()
		if b.delivering || len(b.pending) == 0 {
			b.mu.Unlock()
			return
		}
		b.delivering = true
		batch := b.pending
		b.pending = nil
		b.mu.Unlock()
		b.deliverBatch(batch)
	}
}

// deliverBatch hands batch to its subscribers. If one panics, the events
// after the one it was given go back to the head of the queue, for the next
// delivery, and the panic goes on.
func (b *Balancer[T]) deliverBatch(batch []pending) {
	next := 0 // batch[next:] are not delivered yet
	defer func() {
		b.mu.Lock()
		if next < len(batch) {
			b.pending = append(batch[next:len(batch):len(batch)], b.pending...)
		}
		b.delivering = false
		b.mu.Unlock()
	}()
	for next < len(batch) {
		p := batch[next]
		next++
		for _, s := range p.subs {
			if !s.canceled.Load() {
				s.fn(p.ev)
			}
		}
	}
}
