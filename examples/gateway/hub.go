package main

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// An event is one message of the /ws stream.
type event struct {
	// Type is request, breaker, health or stats.
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	Data any       `json:"data"`
}

// Why a subscriber's stream ended.
var (
	errSlowClient = errors.New("client too slow: its buffer filled up")
	errHubClosed  = errors.New("gateway shutting down")
	errTooMany    = errors.New("too many stream clients")
	errRevoked    = errors.New("the reloaded configuration no longer lets this client watch")
)

// A hub fans events out to the /ws subscribers. Publishing never blocks: a
// subscriber whose buffer is full is dropped, so a slow client cannot slow
// any request. It is safe for concurrent use.
type hub struct {
	buffer     int
	maxClients int
	count      atomic.Int64
	dropped    atomic.Uint64

	// mu guards subs and closed.
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
	// wg counts subscribers not yet finished, so Close can wait for them.
	wg sync.WaitGroup
}

// A subscriber is one stream client's queue. Messages arrive on C until
// Done is closed; then Err says why.
type subscriber struct {
	C    chan []byte
	done chan struct{}
	err  error // set before done is closed
	// allowed reports whether the client may still watch the stream
	// under the route table of a reloaded configuration.
	allowed func(*table) bool
}

// Done is closed when the hub ends the subscription.
func (s *subscriber) Done() <-chan struct{} { return s.done }

// Err reports why the subscription ended.
func (s *subscriber) Err() error {
	<-s.done
	return s.err
}

func newHub(buffer, maxClients int) *hub {
	return &hub{buffer: buffer, maxClients: maxClients, subs: map[*subscriber]struct{}{}}
}

// subscribe adds a subscriber, which recheck ends when allowed refuses a
// reloaded table. The caller must call unsubscribe when it stops reading.
func (h *hub) subscribe(allowed func(*table) bool) (*subscriber, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errHubClosed
	}
	if len(h.subs) >= h.maxClients {
		return nil, errTooMany
	}
	s := &subscriber{C: make(chan []byte, h.buffer), done: make(chan struct{}), allowed: allowed}
	h.subs[s] = struct{}{}
	h.count.Store(int64(len(h.subs)))
	h.wg.Add(1)
	return s, nil
}

// unsubscribe removes s, if the hub has not already, and marks it finished.
func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	h.endLocked(s, nil)
	h.mu.Unlock()
	h.wg.Done()
}

// endLocked removes s with reason err. h.mu must be held.
func (h *hub) endLocked(s *subscriber, err error) {
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	h.count.Store(int64(len(h.subs)))
	s.err = err
	close(s.done)
}

// active reports whether anyone is listening, so that callers can skip
// building events nobody will read.
func (h *hub) active() bool { return h.count.Load() > 0 }

// clients returns the number of subscribers.
func (h *hub) clients() int { return int(h.count.Load()) }

// publish sends ev to every subscriber, dropping those whose buffer is full.
func (h *hub) publish(ev event) {
	if !h.active() {
		return
	}
	msg, err := json.Marshal(ev)
	if err != nil {
		return // events are the gateway's own types; cannot happen
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.C <- msg:
		default:
			h.dropped.Add(1)
			h.endLocked(s, errSlowClient)
		}
	}
}

// recheck ends, with errRevoked, the subscriptions that t no longer
// allows: a reload that removes a token or a role takes effect on the
// stream clients already connected, not only on new ones.
func (h *hub) recheck(t *table) {
	h.mu.Lock()
	subs := slices.Collect(maps.Keys(h.subs))
	h.mu.Unlock()
	var revoked []*subscriber
	for _, s := range subs { // outside the lock: allowed is the caller's code
		if !s.allowed(t) {
			revoked = append(revoked, s)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range revoked {
		h.endLocked(s, errRevoked)
	}
}

// Close ends every subscription and waits until each subscriber's reader has
// called unsubscribe. Later subscribe calls fail.
func (h *hub) Close() error {
	h.mu.Lock()
	h.closed = true
	for s := range h.subs {
		h.endLocked(s, errHubClosed)
	}
	h.mu.Unlock()
	h.wg.Wait()
	return nil
}
