package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/cache"
	"github.com/proxykit/proxy/internal/clocktest"
)

// A *cache.Cache is a ResponseStore. The guard is here rather than in
// cached.go so that the root package does not import the cache package
// (and golang-lru) for it.
var _ proxy.ResponseStore = (*cache.Cache[string, *proxy.Response])(nil)

// cachedBackend answers with the request's data and counts its calls. When
// gate is set, each call waits for it to close (or for ctx).
type cachedBackend struct {
	calls atomic.Int64
	gate  chan struct{}
	err   error
	// seen records the data of the last request the backend got.
	seen atomic.Pointer[string]
}

func (b *cachedBackend) Process(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
	b.calls.Add(1)
	if b.gate != nil {
		select {
		case <-b.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	seen := string(req.Data)
	b.seen.Store(&seen)
	if b.err != nil {
		return nil, b.err
	}
	// The response shares the request's data bytes, as echo does.
	return &proxy.Response{RequestID: req.ID, Service: req.Service, Instance: "i1", Data: req.Data}, nil
}

func cachedStore(t *testing.T, opts ...cache.Option) *cache.Cache[string, *proxy.Response] {
	t.Helper()
	store := cache.New[string, *proxy.Response](64, time.Minute, opts...)
	t.Cleanup(func() { store.Close() })
	return store
}

func cachedReq(id, data string) *proxy.Request {
	return &proxy.Request{
		ID:       id,
		UserID:   "alice",
		Service:  "payment",
		Data:     json.RawMessage(data),
		Metadata: map[string]string{proxy.MetaTraceID: "trace-" + id},
	}
}

func TestCachedHitIsMarkedAndCarriesItsRequestID(t *testing.T) {
	backend := &cachedBackend{}
	svc := proxy.Chain(backend, proxy.Cached(cachedStore(t), nil))

	first, err := svc.Process(t.Context(), cachedReq("r1", `{"amount":1,"currency":"INR"}`))
	if err != nil {
		t.Fatalf("Process(r1) error = %v", err)
	}
	if first.Cached || first.RequestID != "r1" {
		t.Errorf("Process(r1) = {RequestID: %q, Cached: %v}, want {%q, false}", first.RequestID, first.Cached, "r1")
	}
	// Same service, user and data in another key order: the default key
	// makes it the same question.
	second, err := svc.Process(t.Context(), cachedReq("r2", `{"currency": "INR", "amount": 1}`))
	if err != nil {
		t.Fatalf("Process(r2) error = %v", err)
	}
	want := proxy.Response{RequestID: "r2", Service: "payment", Instance: "i1", Data: json.RawMessage(`{"amount":1,"currency":"INR"}`), Cached: true}
	if !cachedEqual(second, &want) {
		t.Errorf("Process(r2) = %+v, want %+v", *second, want)
	}
	if got := backend.calls.Load(); got != 1 {
		t.Errorf("backend calls = %d, want 1", got)
	}
	// Another user is another key.
	other := cachedReq("r3", `{"amount":1,"currency":"INR"}`)
	other.UserID = "bob"
	if resp, _ := svc.Process(t.Context(), other); resp.Cached {
		t.Error("Process(bob's request) Cached = true, want false: another user is another key")
	}
}

func cachedEqual(a, b *proxy.Response) bool {
	return a.RequestID == b.RequestID && a.Service == b.Service && a.Instance == b.Instance &&
		bytes.Equal(a.Data, b.Data) && a.Cached == b.Cached
}

func TestCachedKeyFunc(t *testing.T) {
	backend := &cachedBackend{}
	svc := proxy.Chain(backend, proxy.Cached(cachedStore(t), proxy.KeyByUser))
	svc.Process(t.Context(), cachedReq("r1", `{"q":1}`))
	resp, err := svc.Process(t.Context(), cachedReq("r2", `{"q":2}`)) // same user: a hit
	if err != nil || !resp.Cached || string(resp.Data) != `{"q":1}` {
		t.Errorf("Process(r2) keyed by user = %+v, %v, want the cached answer to r1", resp, err)
	}
}

// TestCachedMutationsDoNotReachTheStore changes what a caller holds after
// each call, in every way it can, and checks that the next hit is intact.
func TestCachedMutationsDoNotReachTheStore(t *testing.T) {
	const data = `{"amount":1}`
	mutations := []struct {
		name   string
		mutate func(req *proxy.Request, resp *proxy.Response)
	}{
		{"response data bytes", func(_ *proxy.Request, resp *proxy.Response) { resp.Data[2] = 'X' }},
		{"response fields", func(_ *proxy.Request, resp *proxy.Response) {
			resp.Data, resp.Instance, resp.Service, resp.RequestID, resp.Cached = nil, "evil", "evil", "evil", false
		}},
		{"request data bytes", func(req *proxy.Request, _ *proxy.Response) { req.Data[2] = 'X' }},
		{"request metadata", func(req *proxy.Request, _ *proxy.Response) { req.Metadata[proxy.MetaTraceID] = "evil" }},
	}
	for _, mu := range mutations {
		for _, after := range []string{"miss", "hit"} {
			t.Run(mu.name+" after a "+after, func(t *testing.T) {
				backend := &cachedBackend{}
				svc := proxy.Chain(backend, proxy.Cached(cachedStore(t), nil))
				req := cachedReq("r1", data)
				resp, err := svc.Process(t.Context(), req)
				if after == "hit" {
					req = cachedReq("r2", data)
					resp, err = svc.Process(t.Context(), req)
				}
				if err != nil {
					t.Fatalf("Process error = %v", err)
				}
				mu.mutate(req, resp)
				got, err := svc.Process(t.Context(), cachedReq("r3", data))
				want := proxy.Response{RequestID: "r3", Service: "payment", Instance: "i1", Data: json.RawMessage(data), Cached: true}
				if err != nil || !cachedEqual(got, &want) {
					t.Errorf("Process after the change = %+v, %v, want %+v, <nil>", got, err, want)
				}
			})
		}
	}
}

// TestCachedHitCopiesDataOfEverySize changes every byte of a hit's data, and
// appends to it, for data of every size a hit copies differently.
func TestCachedHitCopiesDataOfEverySize(t *testing.T) {
	for _, n := range []int{0, 1, 32, 33, 128, 129, 512, 513, 4096} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := `"` + strings.Repeat("x", max(n-2, 0)) + `"`
			if n == 0 {
				data = ""
			} else if n == 1 {
				data = "1"
			}
			svc := proxy.Chain(&cachedBackend{}, proxy.Cached(cachedStore(t), nil))
			svc.Process(t.Context(), cachedReq("r1", data))
			hit, err := svc.Process(t.Context(), cachedReq("r2", data))
			if err != nil || !hit.Cached || string(hit.Data) != data {
				t.Fatalf("Process(r2) = %+v, %v, want a hit with data %q", hit, err, data)
			}
			if len(hit.Data) != cap(hit.Data) {
				t.Errorf("Process(r2).Data has len %d, cap %d, want them equal", len(hit.Data), cap(hit.Data))
			}
			for i := range hit.Data {
				hit.Data[i] = 'X'
			}
			hit.Data = append(hit.Data, "more"...)
			again, err := svc.Process(t.Context(), cachedReq("r3", data))
			if err != nil || string(again.Data) != data || again.RequestID != "r3" {
				t.Errorf("Process(r3) after changing r2's data = %+v, %v, want data %q", again, err, data)
			}
		})
	}
}

// cachedFixedStore is a ResponseStore that holds one response under every
// key.
type cachedFixedStore struct{ resp *proxy.Response }

func (s cachedFixedStore) Get(string) (*proxy.Response, bool) { return s.resp, true }

func (s cachedFixedStore) GetOrLoad(context.Context, string, func(context.Context) (*proxy.Response, error)) (*proxy.Response, error) {
	return s.resp, nil
}

// TestCachedHitCopiesEveryField fills every field of the stored Response,
// whatever fields Response has, so that a field added to Response later and
// forgotten by the hit's copy fails here.
func TestCachedHitCopiesEveryField(t *testing.T) {
	for _, n := range []int{5, 100, 300, 1000} { // each block size, and the plain Clone
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			stored := &proxy.Response{}
			v := reflect.ValueOf(stored).Elem()
			for i := range v.NumField() {
				f := v.Field(i)
				switch f.Kind() {
				case reflect.String:
					f.SetString("field-" + v.Type().Field(i).Name)
				case reflect.Bool:
					f.SetBool(true)
				case reflect.Slice:
					f.SetBytes([]byte(`"` + strings.Repeat("x", n-2) + `"`))
				default:
					t.Fatalf("Response.%s is a %v: teach this test (and the hit's copy in cached.go) about it", v.Type().Field(i).Name, f.Kind())
				}
			}
			svc := proxy.Chain(&cachedBackend{}, proxy.Cached(cachedFixedStore{stored}, nil))
			got, err := svc.Process(t.Context(), cachedReq("r1", `{}`))
			if err != nil {
				t.Fatalf("Process(r1) error = %v", err)
			}
			want := *stored
			want.RequestID, want.Cached = "r1", true
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("Process(r1) = %+v, want %+v", *got, want)
			}
			if got == stored || &got.Data[0] == &stored.Data[0] {
				t.Error("Process(r1) shares the stored response or its data, want a copy")
			}
		})
	}
}

// TestCachedLoadUsesACopyOfTheRequest: the caller whose request started the
// call gives up and changes its request while another caller still waits;
// the backend and the store see the request as it was.
func TestCachedLoadUsesACopyOfTheRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		backend := &cachedBackend{gate: make(chan struct{})}
		svc := proxy.Chain(backend, proxy.Cached(cachedStore(t), nil))
		const data = `{"amount":1}`
		req := cachedReq("r1", data)
		ctx, cancel := context.WithCancel(t.Context())
		firstErr := make(chan error, 1)
		go func() {
			_, err := svc.Process(ctx, req)
			firstErr <- err
		}()
		synctest.Wait()
		second := make(chan *proxy.Response, 1)
		go func() {
			resp, _ := svc.Process(t.Context(), cachedReq("r2", data))
			second <- resp
		}()
		synctest.Wait()
		cancel()
		if err := <-firstErr; !errors.Is(err, context.Canceled) {
			t.Fatalf("first Process error = %v, want %v", err, context.Canceled)
		}
		req.Data[2] = 'X' // the caller owns its request again
		close(backend.gate)
		if got := <-second; got == nil || string(got.Data) != data || !got.Cached || got.RequestID != "r2" {
			t.Fatalf("second Process = %+v, want data %s, Cached, RequestID r2", got, data)
		}
		if seen := *backend.seen.Load(); seen != data {
			t.Errorf("backend saw data %s, want %s", seen, data)
		}
	})
}

// TestCachedRefreshUsesACopyOfTheRequest: a stale serve starts a
// background refresh with the request of a caller that has already got its
// answer and may change its request.
func TestCachedRefreshUsesACopyOfTheRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clocktest.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
		store := cache.New[string, *proxy.Response](64, time.Minute, cache.WithClock(clk),
			cache.WithStaleWhileRevalidate(time.Hour))
		defer store.Close()
		backend := &cachedBackend{}
		svc := proxy.Chain(backend, proxy.Cached(store, nil))
		const data = `{"amount":1}`
		if _, err := svc.Process(t.Context(), cachedReq("r1", data)); err != nil {
			t.Fatalf("Process(r1) error = %v", err)
		}
		clk.Advance(time.Minute)
		backend.gate = make(chan struct{})
		req := cachedReq("r2", data)
		resp, err := svc.Process(t.Context(), req)
		if err != nil || !resp.Cached || resp.RequestID != "r2" {
			t.Fatalf("Process(r2) = %+v, %v, want a stale response for r2", resp, err)
		}
		req.Data[2] = 'X' // r2's caller owns its request again
		close(backend.gate)
		synctest.Wait() // the refresh has stored its response
		if seen := *backend.seen.Load(); seen != data {
			t.Errorf("refresh saw data %s, want %s", seen, data)
		}
		got, err := svc.Process(t.Context(), cachedReq("r3", data))
		if err != nil || string(got.Data) != data || !got.Cached {
			t.Errorf("Process(r3) after the refresh = %+v, %v, want the cached data %s", got, err, data)
		}
		if n := backend.calls.Load(); n != 2 {
			t.Errorf("backend calls = %d, want 2", n)
		}
	})
}

func TestCachedErrorsPassThroughAndAreNotCached(t *testing.T) {
	errDeclined := errors.New("card declined")
	wrapped := fmt.Errorf("payment: %w", errDeclined)
	backend := &cachedBackend{err: wrapped}
	svc := proxy.Chain(backend, proxy.Cached(cachedStore(t), nil))
	for i := range 2 {
		resp, err := svc.Process(t.Context(), cachedReq("r1", `{}`))
		if resp != nil || err != wrapped || !errors.Is(err, errDeclined) {
			t.Fatalf("call %d: Process = %v, %v, want <nil>, the backend's error unchanged", i, resp, err)
		}
	}
	if got := backend.calls.Load(); got != 2 {
		t.Errorf("backend calls = %d, want 2: errors are not cached", got)
	}
	backend.err = nil
	if resp, err := svc.Process(t.Context(), cachedReq("r1", `{}`)); err != nil || resp.Cached {
		t.Errorf("Process after recovery = %+v, %v, want a fresh response", resp, err)
	}
}

func TestCachedNilResponseIsAnErrorAndNotCached(t *testing.T) {
	calls := 0
	backend := proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		calls++
		return nil, nil
	})
	svc := proxy.Chain(backend, proxy.Cached(cachedStore(t), nil))
	for range 2 {
		if resp, err := svc.Process(t.Context(), aliceReq); resp != nil || err == nil {
			t.Fatalf("Process with a backend answering nil, nil = %v, %v, want <nil>, an error", resp, err)
		}
	}
	if calls != 2 {
		t.Errorf("backend calls = %d, want 2", calls)
	}
}

func TestCachedConcurrentMissesShareOneCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const callers = 50
		backend := &cachedBackend{gate: make(chan struct{})}
		svc := proxy.Chain(backend, proxy.Cached(cachedStore(t), nil))
		results := make(chan *proxy.Response, callers)
		for i := range callers {
			go func() {
				resp, err := svc.Process(t.Context(), cachedReq(fmt.Sprint("r", i), `{"q":1}`))
				if err != nil {
					t.Errorf("Process(r%d) error = %v", i, err)
				}
				results <- resp
			}()
		}
		synctest.Wait()
		close(backend.gate)
		fresh := 0
		ids := map[string]bool{}
		for range callers {
			resp := <-results
			if !resp.Cached {
				fresh++
			}
			ids[resp.RequestID] = true
		}
		if fresh != 1 {
			t.Errorf("responses with Cached false = %d, want 1 (the caller whose request made the call)", fresh)
		}
		if len(ids) != callers {
			t.Errorf("distinct RequestIDs = %d, want %d: each response carries its own request's ID", len(ids), callers)
		}
		if got := backend.calls.Load(); got != 1 {
			t.Errorf("backend calls = %d, want 1", got)
		}
	})
}

func TestCachedServesStaleOnError(t *testing.T) {
	clk := clocktest.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	store := cache.New[string, *proxy.Response](64, time.Minute, cache.WithClock(clk), cache.WithStaleIfError(time.Hour))
	defer store.Close()
	backend := &cachedBackend{}
	svc := proxy.Chain(backend, proxy.Cached(store, nil))
	svc.Process(t.Context(), cachedReq("r1", `{"q":1}`))
	clk.Advance(2 * time.Minute)
	backend.err = proxy.ErrCircuitOpen
	resp, err := svc.Process(t.Context(), cachedReq("r2", `{"q":1}`))
	if err != nil || !resp.Cached || resp.RequestID != "r2" || string(resp.Data) != `{"q":1}` {
		t.Errorf("Process with the backend failing = %+v, %v, want the stale response for r2", resp, err)
	}
}

func TestCachedBackendPanicReachesTheCaller(t *testing.T) {
	svc := proxy.Chain(proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		panic("backend bug")
	}), proxy.Cached(cachedStore(t), nil))
	defer func() {
		if r := recover(); r != "backend bug" {
			t.Errorf("recovered %#v, want %q", r, "backend bug")
		}
	}()
	svc.Process(t.Context(), aliceReq)
	t.Error("Process returned, want a panic")
}

func TestCachedPanicsOnNilStore(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Error("Cached(nil, nil) did not panic")
		}
	}()
	proxy.Cached(nil, nil)
}

// cachedBenchReq is the request of the Cached benchmarks.
func cachedBenchReq() *proxy.Request {
	return &proxy.Request{ID: "req_1", UserID: "alice", Service: "payment",
		Data: json.RawMessage(`{"amount":100.5,"currency":"INR"}`)}
}

// BenchmarkCachedBaseline is what a hit cannot avoid: the key function and
// a bare golang-lru Get.
func BenchmarkCachedBaseline(b *testing.B) {
	req := cachedBenchReq()
	for _, kf := range []struct {
		name string
		key  proxy.KeyFunc
	}{{"KeyByRequest", proxy.KeyByRequest}, {"KeyByUser", proxy.KeyByUser}} {
		l, _ := lru.New[string, *proxy.Response](64)
		l.Add(kf.key(req), &proxy.Response{})
		b.Run(kf.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := l.Get(kf.key(req)); !ok {
					b.Fatal("miss")
				}
			}
		})
	}
}

func BenchmarkCachedHit(b *testing.B) {
	req := cachedBenchReq()
	for _, kf := range []struct {
		name string
		key  proxy.KeyFunc
	}{{"KeyByRequest", proxy.KeyByRequest}, {"KeyByUser", proxy.KeyByUser}} {
		store := cache.New[string, *proxy.Response](64, time.Hour)
		svc := proxy.Chain(echo, proxy.Cached(store, kf.key))
		if _, err := svc.Process(context.Background(), req); err != nil {
			b.Fatal(err)
		}
		b.Run(kf.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if resp, _ := svc.Process(context.Background(), req); !resp.Cached {
					b.Fatal("miss")
				}
			}
		})
		b.Run(kf.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					svc.Process(context.Background(), req)
				}
			})
		})
		store.Close()
	}
}
