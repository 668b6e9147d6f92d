package breaker

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// An Event records a change of a [Breaker]'s state.
type Event struct {
	// Name is the breaker's name (see [WithName]).
	Name string
	// From is the state the breaker left.
	From State
	// To is the state the breaker entered.
	To State
	// At is when the change happened, by the wall clock, which is also the
	// clock the breaker's cool-down and counting window follow.
	At time.Time
}

// subscription is one subscriber of a Breaker.
type subscription struct {
	fn       func(Event)
	canceled atomic.Bool
}

// Subscribe arranges for fn to be called with every later change of the
// breaker's state, and returns a function that cancels the subscription.
//
// Events are delivered one at a time and in the order the changes happened,
// none lost, on the goroutine of a call to [Breaker.Do] (or Execute or
// State) that caused a change or found changes waiting, after the breaker has
// released its locks: fn may call the breaker's methods, including
// Subscribe, without deadlock. fn runs in the caller's time, so it should be
// quick, and it should not panic: a panic reaches the caller whose call was
// delivering, and the events still waiting are delivered by the next call.
//
// Calling cancel more than once is harmless. Once cancel has returned, fn
// is called only by a delivery that had already begun on another goroutine.
// Subscribe panics if fn is nil.
func (b *Breaker) Subscribe(fn func(Event)) (cancel func()) {
	if fn == nil {
		panic("breaker: Subscribe(nil)")
	}
	s := &subscription{fn: fn}
	b.mu.Lock()
	b.subs = append(slices.Clip(b.subs), s) // a new array: deliveries may be reading the old one
	b.mu.Unlock()
	return func() {
		if s.canceled.Swap(true) {
			return
		}
		b.mu.Lock()
		b.subs = slices.DeleteFunc(slices.Clone(b.subs), func(x *subscription) bool { return x == s })
		b.mu.Unlock()
	}
}

// record is gobreaker's OnStateChange. gobreaker calls it with its mutex
// held, so it only queues the event; flush delivers it later.
func (b *Breaker) record(name string, from, to gobreaker.State) {
	b.fast.changed(stateOf(to))
	ev := Event{Name: name, From: stateOf(from), To: stateOf(to), At: time.Now()}
	b.mu.Lock()
	if len(b.subs) > 0 {
		b.queue = append(b.queue, ev)
		b.dirty.Store(true)
	}
	b.mu.Unlock()
}

// flush delivers the queued events, if any.
func (b *Breaker) flush() {
	if b.dirty.Load() {
		b.deliver()
	}
}

// deliver hands the queued events to the subscribers, oldest first, unless
// another goroutine is already doing so: that one then delivers the events
// queued meanwhile too, since it stops only when it finds the queue empty,
// under the same lock under which events are queued.
func (b *Breaker) deliver() {
	b.mu.Lock()
	if b.delivering {
		b.mu.Unlock()
		return
	}
	b.delivering = true
	b.mu.Unlock()

	finished := false
	defer func() {
		if !finished { // a subscriber panicked: let the next call deliver the rest
			b.mu.Lock()
			b.delivering = false
			b.mu.Unlock()
		}
	}()
	for {
		b.mu.Lock()
		if b.head == len(b.queue) {
			clear(b.queue)
			b.queue, b.head = b.queue[:0], 0
			b.dirty.Store(false)
			b.delivering = false
			finished = true
			b.mu.Unlock()
			return
		}
		ev := b.queue[b.head]
		b.head++
		subs := b.subs
		b.mu.Unlock()

		for _, s := range subs {
			if !s.canceled.Load() {
				s.fn(ev)
			}
		}
	}
}
