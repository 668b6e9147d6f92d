package rediscache_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/cache"
	"github.com/proxykit/proxy/internal/redistest"
	"github.com/proxykit/proxy/rediscache"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// replica is one gateway process's view: its own memory cache and Redis
// client, in front of a backend whose calls are counted.
type replica struct {
	store *rediscache.Store
	svc   proxy.Service
}

func newReplica(t *testing.T, addr string, calls *atomic.Int64) replica {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	local := cache.New[string, *proxy.Response](100, time.Minute)
	t.Cleanup(func() { _ = local.Close() })
	store := rediscache.New(local, client, time.Minute)
	backend := proxy.ServiceFunc(func(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
		n := calls.Add(1)
		return &proxy.Response{RequestID: req.ID, Service: req.Service, Data: json.RawMessage(`{"call":` + string(rune('0'+n)) + `}`)}, nil
	})
	return replica{store: store, svc: proxy.Chain(backend, proxy.Cached(store, nil))}
}

func request(id string) *proxy.Request {
	return &proxy.Request{ID: id, UserID: "alice", Service: "user", Data: json.RawMessage(`{"op":"get","id":"u1"}`)}
}

func TestResponseCachedByOneReplicaHitsOnTheOther(t *testing.T) {
	srv := redistest.Start(t)
	var calls atomic.Int64
	a := newReplica(t, srv.Addr(), &calls)
	b := newReplica(t, srv.Addr(), &calls)

	first, err := a.svc.Process(t.Context(), request("req_1"))
	if err != nil || first.Cached {
		t.Fatalf("replica a: Process = %+v, %v; want a fresh response", first, err)
	}
	second, err := b.svc.Process(t.Context(), request("req_2"))
	if err != nil {
		t.Fatal(err)
	}
	if !second.Cached || second.RequestID != "req_2" || string(second.Data) != string(first.Data) {
		t.Errorf("replica b: Process = %+v, want a hit for req_2 with replica a's data %s", second, first.Data)
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("backend calls = %d, want 1", got)
	}
	if s := b.store.Stats(); s.RemoteHits != 1 || s.RemoteErrors != 0 {
		t.Errorf("replica b Stats = %+v, want one remote hit and no errors", s)
	}
	// b now holds it in memory: a third call touches neither Redis nor the
	// backend.
	if _, err := b.svc.Process(t.Context(), request("req_3")); err != nil {
		t.Fatal(err)
	}
	if s := b.store.Stats(); s.RemoteHits != 1 || calls.Load() != 1 {
		t.Errorf("after a memory hit: Stats = %+v, calls = %d; want unchanged", s, calls.Load())
	}
}

func TestRedisErrorIsAMiss(t *testing.T) {
	srv := redistest.Start(t)
	var calls atomic.Int64
	a := newReplica(t, srv.Addr(), &calls)
	srv.Stop()
	for i, id := range []string{"req_1", "req_2"} {
		resp, err := a.svc.Process(t.Context(), request(id))
		if err != nil {
			t.Fatalf("call %d with Redis down: %v, want served", i, err)
		}
		if resp.RequestID != id {
			t.Errorf("call %d: RequestID = %q, want %q", i, resp.RequestID, id)
		}
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("backend calls = %d, want 1 (the second is a memory hit)", got)
	}
	if s := a.store.Stats(); s.RemoteErrors != 2 {
		t.Errorf("Stats = %+v, want 2 remote errors (the lookup and the store)", s)
	}
}

func TestUnreadableRedisValueIsAMiss(t *testing.T) {
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })
	var calls atomic.Int64
	a := newReplica(t, srv.Addr(), &calls)
	key := proxy.KeyByRequest(request("x"))
	if err := client.Set(t.Context(), "proxy:cache:"+key, "not json", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.svc.Process(t.Context(), request("req_1")); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 || a.store.Stats().RemoteErrors != 1 {
		t.Errorf("calls = %d, Stats = %+v; want the backend called once after one unreadable value",
			calls.Load(), a.store.Stats())
	}
}

func TestNewPanicsOnBadSettings(t *testing.T) {
	local := cache.New[string, *proxy.Response](1, time.Minute)
	t.Cleanup(func() { _ = local.Close() })
	good := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	plain := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = good.Close(); _ = plain.Close() })
	for name, f := range map[string]func(){
		"nil local":    func() { rediscache.New(nil, good, time.Minute) },
		"nil client":   func() { rediscache.New(local, nil, time.Minute) },
		"zero ttl":     func() { rediscache.New(local, good, 0) },
		"plain client": func() { rediscache.New(local, plain, time.Minute) },
		"zero timeout": func() { rediscache.WithTimeout(0) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		})
	}
}

func BenchmarkRemoteHit(b *testing.B) {
	srv := redistest.Start(b)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	b.Cleanup(func() { _ = client.Close() })
	local := cache.New[string, *proxy.Response](1, time.Minute)
	b.Cleanup(func() { _ = local.Close() })
	store := rediscache.New(local, client, time.Minute)
	resp := &proxy.Response{RequestID: "r", Service: "user", Data: json.RawMessage(`{"name":"alice"}`)}
	ctx := context.Background()
	// Fill Redis, then make every lookup miss in memory (capacity 1, other
	// key in between) and hit in Redis.
	if _, err := store.GetOrLoad(ctx, "k", func(context.Context) (*proxy.Response, error) { return resp, nil }); err != nil {
		b.Fatal(err)
	}
	var loads atomic.Int64
	fail := func(context.Context) (*proxy.Response, error) { loads.Add(1); return resp, nil }
	other := func(context.Context) (*proxy.Response, error) { return resp, nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := store.GetOrLoad(ctx, "k", fail); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_, _ = store.GetOrLoad(ctx, "evict", other)
		b.StartTimer()
	}
	if n := loads.Load(); n != 0 {
		b.Fatalf("load called %d times on remote hits", n)
	}
}
