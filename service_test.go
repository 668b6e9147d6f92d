package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/proxykit/proxy"
)

func TestChainAppliesOnceOutermostFirst(t *testing.T) {
	var order []string
	applied := 0
	layer := func(name string) proxy.Middleware {
		return func(next proxy.Service) proxy.Service {
			applied++
			return proxy.ServiceFunc(func(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
				order = append(order, name)
				return next.Process(ctx, req)
			})
		}
	}
	svc := proxy.Chain(echo, layer("a"), layer("b"), layer("c"))
	for range 3 {
		_, err := svc.Process(t.Context(), aliceReq)
		require.NoError(t, err)
	}
	if applied != 3 {
		t.Errorf("middleware applied %d times, want 3 (once each, at Chain time)", applied)
	}
	if got, want := fmt.Sprint(order[:3]), "[a b c]"; got != want {
		t.Errorf("call order = %s, want %s", got, want)
	}
}

func TestChainWithoutMiddlewareIsTheService(t *testing.T) {
	resp, err := proxy.Chain(echo).Process(t.Context(), aliceReq)
	require.NoError(t, err)
	if resp.RequestID != aliceReq.ID {
		t.Errorf("RequestID = %q, want %q", resp.RequestID, aliceReq.ID)
	}
}

func TestChainPanicsOnNil(t *testing.T) {
	tests := []struct {
		name string
		call func()
	}{
		{"nil service", func() { proxy.Chain(nil) }},
		{"nil middleware", func() { proxy.Chain(echo, nil) }},
		{"middleware returning nil", func() { proxy.Chain(echo, func(proxy.Service) proxy.Service { return nil }) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			panicMessage(t, tt.call)
		})
	}
}

// panicMessage fails the test unless call panics with a message that
// carries the package prefix.
func panicMessage(t *testing.T, call func()) {
	t.Helper()
	defer func() {
		msg := recover()
		s, ok := msg.(string)
		if !ok || !strings.HasPrefix(s, "proxy: ") {
			t.Fatalf("panic value = %#v, want a string with the \"proxy: \" prefix", msg)
		}
	}()
	call()
}

func TestRequestCloneIsDeep(t *testing.T) {
	orig := &proxy.Request{
		ID: "r1", UserID: "u1", Service: "s",
		Data:     json.RawMessage(`{"a":1}`),
		Metadata: map[string]string{proxy.MetaTraceID: "t1"},
	}
	c := orig.Clone()
	c.Data[2] = 'b'
	c.Metadata[proxy.MetaTraceID] = "changed"
	if string(orig.Data) != `{"a":1}` {
		t.Errorf("after changing the clone, orig.Data = %s, want {\"a\":1}", orig.Data)
	}
	if got := orig.Meta(proxy.MetaTraceID); got != "t1" {
		t.Errorf("after changing the clone, orig.Meta(trace_id) = %q, want t1", got)
	}
}

func TestResponseCloneIsDeep(t *testing.T) {
	orig := &proxy.Response{RequestID: "r1", Data: json.RawMessage(`[1]`)}
	c := orig.Clone()
	c.Data[1] = '2'
	if string(orig.Data) != `[1]` {
		t.Errorf("after changing the clone, orig.Data = %s, want [1]", orig.Data)
	}
	if (&proxy.Response{}).Clone().Data != nil {
		t.Error("Clone of nil Data is not nil")
	}
}

func TestTypedErrorsMatchTheirSentinels(t *testing.T) {
	rl := fmt.Errorf("layer: %w", &proxy.RateLimitError{Key: "alice", RetryAfter: time.Second})
	require.ErrorIs(t, rl, proxy.ErrRateLimited)
	var rle *proxy.RateLimitError
	require.ErrorAs(t, rl, &rle)
	if rle.RetryAfter != time.Second {
		t.Errorf("RetryAfter = %v, want 1s", rle.RetryAfter)
	}
	inv := fmt.Errorf("layer: %w", &proxy.InvalidRequestError{Field: "user_id", Reason: "missing"})
	require.ErrorIs(t, inv, proxy.ErrInvalidRequest)
	if errors.Is(inv, proxy.ErrRateLimited) {
		t.Error("an InvalidRequestError matches ErrRateLimited")
	}
}

func TestKeyByRequestIsCanonical(t *testing.T) {
	req := func(data string) *proxy.Request {
		return &proxy.Request{ID: "x", UserID: "u", Service: "s", Data: json.RawMessage(data)}
	}
	same := []string{`{"a":1,"b":[1,2]}`, `{ "b": [1, 2], "a": 1 }`, "{\n\"b\":[1,2],\"a\":1}"}
	want := proxy.KeyByRequest(req(same[0]))
	for _, d := range same[1:] {
		if got := proxy.KeyByRequest(req(d)); got != want {
			t.Errorf("KeyByRequest(%s) = %q, want %q", d, got, want)
		}
	}
	differ := []string{`{"a":2,"b":[1,2]}`, `{"a":1,"b":[2,1]}`, `{"a":1.0,"b":[1,2]}`, `not json`,
		`{"a":1,"b":[1,2]} }`, `{"a":1,"b":[1,2]}]`, `{"a":1,"b":[1,2]} {}`, `{"a":1,"b":[1,2]} x`}
	for _, d := range differ {
		if got := proxy.KeyByRequest(req(d)); got == want {
			t.Errorf("KeyByRequest(%s) = %q, the same as for %s", d, got, same[0])
		}
	}
	other := req(same[0])
	other.UserID = "v"
	if proxy.KeyByRequest(other) == want {
		t.Error("KeyByRequest ignores UserID")
	}
	other.ID = "another id"
	other.UserID = "u"
	if proxy.KeyByRequest(other) != want {
		t.Error("KeyByRequest depends on the request ID")
	}
}

func FuzzKeyByRequest(f *testing.F) {
	f.Add(`{"a":1}`)
	f.Add(`[1, {"z":null,"a":"\u00e9"}]`)
	f.Add(`{"a":1} trailing`)
	f.Add(`{"a":1}}`)
	f.Fuzz(func(t *testing.T, data string) {
		r := &proxy.Request{Service: "s", UserID: "u", Data: json.RawMessage(data)}
		k1 := proxy.KeyByRequest(r)
		if k2 := proxy.KeyByRequest(r); k1 != k2 {
			t.Fatalf("KeyByRequest is not deterministic: %q then %q", k1, k2)
		}
		// Valid JSON is keyed by a canonical form that is valid JSON too, and
		// anything else by its bytes, so the two kinds never share a key.
		prefix := "s\x00u\x00"
		switch key, _ := strings.CutPrefix(k1, prefix); {
		case !strings.HasPrefix(k1, prefix):
			t.Fatalf("KeyByRequest(%q) = %q, want the prefix %q", data, k1, prefix)
		case data == "":
			if key != "" {
				t.Fatalf("KeyByRequest(no data) = %q, want %q", k1, prefix)
			}
		case json.Valid([]byte(data)) != json.Valid([]byte(key)):
			t.Fatalf("KeyByRequest(%q) = %q: the data part's validity as JSON changed", data, k1)
		case !json.Valid([]byte(data)) && key != data:
			t.Fatalf("KeyByRequest(%q) = %q, want the invalid data's bytes as they are", data, k1)
		}
		if string(r.Data) != data {
			t.Fatalf("KeyByRequest changed Data to %q", r.Data)
		}
	})
}
