package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/mail"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/internal/canonjson"
)

// A demoBackend is the work behind one demo service: the state its
// instances share, as replicas share a database. handle validates the data
// and does the work; it must be safe for concurrent use and fast (the
// instance adds the staged latency around it).
type demoBackend interface {
	handle(req *proxy.Request) (any, error)
}

// demoFactories makes the backend of each demo kind.
var demoFactories = map[string]func() demoBackend{
	"payment":      func() demoBackend { return newPaymentBackend() },
	"notification": func() demoBackend { return newNotificationBackend() },
	"user":         func() demoBackend { return newUserBackend() },
	"order":        func() demoBackend { return newOrderBackend() },
	"inventory":    func() demoBackend { return newInventoryBackend() },
}

// demoKinds lists the demo kinds in a fixed order, for messages.
func demoKinds() []string {
	return []string{"payment", "notification", "user", "order", "inventory"}
}

// A fault is what is staged on a demo instance: each call waits Latency
// plus a random part of Jitter and then fails with probability ErrorRate; a
// Down instance fails every call and its health check.
type fault struct {
	Latency   time.Duration
	Jitter    time.Duration
	ErrorRate float64
	Down      bool
}

// errInjected is the failure a demo instance stages. It is transient: a
// retry may succeed on another instance.
var errInjected = errors.New("demo: injected failure")

// errInstanceDown is what a demo instance that is staged down answers.
var errInstanceDown = errors.New("demo: instance down")

// A demoInstance is one in-process replica of a demo service. It is safe for
// concurrent use. Its faults can be changed while it serves.
type demoInstance struct {
	name    string
	kind    string
	backend demoBackend
	calls   atomic.Uint64

	// mu guards fault and rng.
	mu    sync.Mutex
	fault fault
	rng   *rand.Rand
}

var _ proxy.Service = (*demoInstance)(nil)

// newDemoInstance returns an instance of backend. Its randomness is seeded
// from seed and its name, so a run with the same seed stages the same
// failures; a zero seed draws a random one.
func newDemoInstance(name, kind string, backend demoBackend, f fault, seed uint64) *demoInstance {
	if seed == 0 {
		seed = rand.Uint64()
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	return &demoInstance{
		name:    name,
		kind:    kind,
		backend: backend,
		fault:   f,
		rng:     rand.New(rand.NewPCG(seed, h.Sum64())),
	}
}

// setFault replaces the staged fault.
func (d *demoInstance) setFault(f fault) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fault = f
}

// currentFault returns the staged fault.
func (d *demoInstance) currentFault() fault {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fault
}

// roll decides how long this call waits and whether it fails.
func (d *demoInstance) roll() (time.Duration, bool, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.fault
	delay := f.Latency
	if f.Jitter > 0 {
		delay += time.Duration(d.rng.Int64N(int64(f.Jitter) + 1))
	}
	fail := f.ErrorRate > 0 && d.rng.Float64() < f.ErrorRate
	return delay, fail, f.Down
}

// Process waits the staged latency (or until ctx is done), fails as staged,
// and otherwise lets the backend do the work.
func (d *demoInstance) Process(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
	d.calls.Add(1)
	delay, fail, down := d.roll()
	if down {
		return nil, fmt.Errorf("%s: %w", d.name, errInstanceDown)
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if fail {
		return nil, fmt.Errorf("%s: %w", d.name, errInjected)
	}
	out, err := d.backend.handle(req)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("%s: encoding the answer: %w", d.name, err)
	}
	return &proxy.Response{RequestID: req.ID, Service: req.Service, Instance: d.name, Data: data}, nil
}

// Health fails while the instance is staged down.
func (d *demoInstance) Health(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.currentFault().Down {
		return fmt.Errorf("%s: %w", d.name, errInstanceDown)
	}
	return nil
}

// maxEmailLen bounds an email address (RFC 5321's limit on a path), so that
// what the demo services remember of each request stays small.
const maxEmailLen = 254

// plainEmail reports whether s is a bare email address, such as
// priya@example.com, of at most maxEmailLen bytes.
func plainEmail(s string) bool {
	if len(s) > maxEmailLen {
		return false
	}
	addr, err := mail.ParseAddress(s)
	return err == nil && addr.Address == s && addr.Name == ""
}

// invalid returns the error a demo service gives for a bad field.
func invalid(field, format string, args ...any) error {
	return &proxy.InvalidRequestError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// decodeData decodes req.Data, which must be a JSON object whose keys are
// all fields of T, into a T. Errors name the offending field under "data".
func decodeData[T any](req *proxy.Request) (T, error) {
	var v T
	if len(req.Data) == 0 || string(req.Data) == "null" {
		return v, invalid("data", "required: a JSON object")
	}
	// The common case, well-formed data of a flat type whose keys are all
	// spelled exactly, needs no strict decoder: decodeFlat takes the
	// plainest of it, json.Unmarshal decodes the rest the same, and only
	// the top level has keys to check.
	if ft := flatTypeOf(reflect.TypeFor[T]()); ft != nil {
		if ft.fields != nil && decodeFlat(req.Data, reflect.ValueOf(&v).Elem(), ft) {
			return v, nil
		}
		v = *new(T)
		if json.Unmarshal(req.Data, &v) == nil && topKeysIn(req.Data, ft.names) {
			return v, nil
		}
	}
	v = *new(T)
	// Else one strict pass decides, and a failure takes a second one that
	// names the offending field.
	dec := json.NewDecoder(bytes.NewReader(req.Data))
	dec.DisallowUnknownFields()
	if dec.Decode(&v) == nil && !dec.More() {
		return v, nil
	}
	v = *new(T)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(req.Data, &fields); err != nil {
		return v, invalid("data", "want a JSON object")
	}
	known := jsonFields(reflect.TypeFor[T]())
	for _, k := range sortedKeys(fields) {
		if !slices.Contains(known, k) {
			return v, invalid("data."+k, "unknown field (known fields: %s)", strings.Join(known, ", "))
		}
	}
	if err := json.Unmarshal(req.Data, &v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return v, invalid("data."+te.Field, "want %s", jsonKind(te.Type))
		}
		return v, invalid("data", "malformed: %v", err)
	}
	return v, nil
}

// jsonFields lists the JSON names of struct type t's fields.
func jsonFields(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// topKeysIn reports whether data, valid JSON, is an object whose keys are
// all among known, spelled exactly and without escapes.
func topKeysIn(data []byte, known []string) bool {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return false
	}
	if i = skipSpace(data, i+1); data[i] == '}' {
		return true
	}
	for {
		end := i + 1 + bytes.IndexByte(data[i+1:], '"')
		key := data[i+1 : end]
		if bytes.IndexByte(key, '\\') >= 0 || !slices.Contains(known, string(key)) {
			return false
		}
		i = skipSpace(data, skipSpace(data, end+1)+1) // past ':'
		if i = skipSpace(data, skipValue(data, i)); data[i] == '}' {
			return true
		}
		i = skipSpace(data, i+1) // past ','
	}
}

// jsonKind names the JSON kind a Go type is decoded from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32:
		return "a whole number"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}

// demoID derives a stable id with prefix from the parts, so that a repeat
// of a request gets the same id.
func demoID(prefix string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return prefix + hex.EncodeToString(h.Sum(nil)[:8])
}

// maxRemembered bounds how many request ids a demo backend remembers for
// deduplication, so that a long run does not grow without bound.
const maxRemembered = 100_000

// idempotent remembers the result of each (user, request id) so that a
// repeat returns the first result instead of doing the work again. It is
// not safe for concurrent use: the backend guards it with its own mutex so
// that the check, the work and the record are one step.
type idempotent struct {
	seen  map[string]idemEntry
	order []string // insertion order, for eviction
}

type idemEntry struct {
	fingerprint [32]byte
	result      any
}

func idemKey(req *proxy.Request) string { return req.UserID + "\x00" + req.ID }

// fingerprint identifies what req asks for, whatever its spacing and key
// order.
func fingerprint(req *proxy.Request) [32]byte {
	if canon, ok := canonjson.Append(nil, req.Data); ok {
		return sha256.Sum256(canon)
	}
	return sha256.Sum256(req.Data)
}

// lookup returns the remembered result of req, or an error if req's id was
// used for a different request. A request without an id is never
// deduplicated.
func (m *idempotent) lookup(req *proxy.Request) (any, bool, error) {
	if req.ID == "" {
		return nil, false, nil
	}
	e, ok := m.seen[idemKey(req)]
	if !ok {
		return nil, false, nil
	}
	if e.fingerprint != fingerprint(req) {
		return nil, false, invalid("id", "already used for a different request; use a new id")
	}
	return e.result, true, nil
}

// remember records result as req's answer.
func (m *idempotent) remember(req *proxy.Request, result any) {
	if req.ID == "" {
		return
	}
	if m.seen == nil {
		m.seen = map[string]idemEntry{}
	}
	k := idemKey(req)
	if len(m.order) >= maxRemembered {
		delete(m.seen, m.order[0])
		m.order = m.order[1:]
	}
	m.seen[k] = idemEntry{fingerprint: fingerprint(req), result: result}
	m.order = append(m.order, k)
}
