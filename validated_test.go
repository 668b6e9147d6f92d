package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/proxykit/proxy"
)

// validatedBackend counts its calls and answers each with the request's id.
type validatedBackend struct{ calls int }

func (b *validatedBackend) Process(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
	b.calls++
	return &proxy.Response{RequestID: req.ID}, nil
}

// validatedReq returns a well-formed request, changed by edit.
func validatedReq(edit func(r *proxy.Request)) *proxy.Request {
	r := &proxy.Request{
		ID:       "req_1",
		UserID:   "alice@example.com",
		Service:  "payment",
		Data:     json.RawMessage(`{"amount":100.5,"currency":"INR"}`),
		Metadata: map[string]string{proxy.MetaTraceID: "4bf92f3577b34da6", proxy.MetaClientAddr: "203.0.113.7:51234"},
	}
	if edit != nil {
		edit(r)
	}
	return r
}

// validatedData returns a well-formed request but for its data, s.
func validatedData(s string) *proxy.Request {
	return validatedReq(func(r *proxy.Request) { r.Data = json.RawMessage(s) })
}

func TestValidatedAcceptsWellFormed(t *testing.T) {
	tests := []struct {
		name string
		req  *proxy.Request
	}{
		{"typical", validatedReq(nil)},
		{"no data", validatedReq(func(r *proxy.Request) { r.Data = nil })},
		{"no service, no metadata", validatedReq(func(r *proxy.Request) { r.Service, r.Metadata = "", nil })},
		{"all name characters", validatedReq(func(r *proxy.Request) { r.ID = "AZaz09._:@-" })},
		{"id of 128 bytes", validatedReq(func(r *proxy.Request) { r.ID = strings.Repeat("a", 128) })},
		{"scalars", validatedData(`[1, -0.5e+10, 0, 1E3, true, false, null, "x"]`)},
		{"top-level scalar", validatedData(` 42 `)},
		{"top-level string", validatedData(`"hello"`)},
		{"empty containers", validatedData(`{"a":{},"b":[],"c":[{}]}`)},
		{"escapes", validatedData(`{"s":"quote \" slash \/ backslash \\ e\u00e9 \u20AC"}`)},
		{"surrogate pair", validatedData(`{"emoji":"\ud83d\ude00"}`)},
		{"unicode text", validatedData(`{"name":"Zoë 李 😀","note":"tab-free"}`)},
		{"whitespace", validatedData("\n{ \"a\" :\t[ 1 , 2 ]\r\n}\n")},
		{"depth 32", validatedData(strings.Repeat("[", 32) + strings.Repeat("]", 32))},
		{"64 KiB", validatedData(`"` + strings.Repeat("x", 64<<10-2) + `"`)},
		{"metadata value of 1024 bytes", validatedReq(func(r *proxy.Request) { r.Metadata["note"] = strings.Repeat("é", 512) })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var backend validatedBackend
			svc := proxy.Chain(&backend, proxy.Validated())
			before := tt.req.Clone()
			resp, err := svc.Process(t.Context(), tt.req)
			if err != nil || resp == nil || resp.RequestID != tt.req.ID {
				t.Fatalf("Process() = %v, %v, want the backend's response", resp, err)
			}
			if backend.calls != 1 {
				t.Errorf("backend called %d times, want 1", backend.calls)
			}
			if !reflect.DeepEqual(tt.req, before) {
				t.Errorf("request after Process = %+v, want it unchanged: %+v", tt.req, before)
			}
		})
	}
}

func TestValidatedRejectsMalformed(t *testing.T) {
	tests := []struct {
		name      string
		req       *proxy.Request
		opts      []proxy.ValidatedOption
		wantField string
		wantIn    string // a part of the reason
	}{
		{"nil request", nil, nil, "request", "missing"},
		{"no id", validatedReq(func(r *proxy.Request) { r.ID = "" }), nil, "id", "missing"},
		{"no user", validatedReq(func(r *proxy.Request) { r.UserID = "" }), nil, "user_id", "missing"},
		{"long id", validatedReq(func(r *proxy.Request) { r.ID = strings.Repeat("a", 129) }), nil, "id", "longer than 128 bytes"},
		{"id with a space", validatedReq(func(r *proxy.Request) { r.ID = "req 1" }), nil, "id", "' '"},
		{"id with NUL", validatedReq(func(r *proxy.Request) { r.ID = "req\x00" }), nil, "id", `'\x00'`},
		{"id with non-ASCII", validatedReq(func(r *proxy.Request) { r.ID = "réq" }), nil, "id", `'\xc3'`},
		{"user with a slash", validatedReq(func(r *proxy.Request) { r.UserID = "../alice" }), nil, "user_id", "'/'"},
		{"service with newline", validatedReq(func(r *proxy.Request) { r.Service = "pay\nment" }), nil, "service", `'\n'`},
		{"custom id length", validatedReq(func(r *proxy.Request) { r.ID, r.UserID = "r1", "alice" }), []proxy.ValidatedOption{proxy.WithMaxIDLength(4)}, "user_id", "longer than 4 bytes"},
		{"too much metadata", validatedReq(func(r *proxy.Request) {
			for i := range 65 {
				r.Metadata[strings.Repeat("k", i+1)] = "v"
			}
		}), nil, "metadata", "more than 64 entries"},
		{"empty metadata key", validatedReq(func(r *proxy.Request) { r.Metadata[""] = "v" }), nil, "metadata", "empty key"},
		{"bad metadata key", validatedReq(func(r *proxy.Request) { r.Metadata["x y"] = "v" }), nil, `metadata["x y"]`, "key contains ' '"},
		{"metadata value with ESC", validatedReq(func(r *proxy.Request) { r.Metadata["note"] = "\x1b[31mred" }), nil, "metadata.note", "control character"},
		{"metadata value with C1", validatedReq(func(r *proxy.Request) { r.Metadata["note"] = "a\u0085b" }), nil, "metadata.note", "control character"},
		{"metadata value not UTF-8", validatedReq(func(r *proxy.Request) { r.Metadata["note"] = "a\xffb" }), nil, "metadata.note", "UTF-8"},
		{"long metadata value", validatedReq(func(r *proxy.Request) { r.Metadata["note"] = strings.Repeat("x", 1025) }), nil, "metadata.note", "longer than 1024 bytes"},
		{"first bad metadata key wins", validatedReq(func(r *proxy.Request) {
			r.Metadata["b"] = "\x00"
			r.Metadata["a"] = "\x00"
			r.Metadata["c"] = "\x00"
		}), nil, "metadata.a", "control character"},
		{"data too large", validatedData(`"` + strings.Repeat("x", 64<<10-1) + `"`), nil, "data", "larger than 65536 bytes"},
		{"custom data size", validatedData(`[1,2,3]`), []proxy.ValidatedOption{proxy.WithMaxDataSize(6)}, "data", "larger than 6 bytes"},
		{"depth 33", validatedData(strings.Repeat("[", 33) + strings.Repeat("]", 33)), nil, "data" + strings.Repeat("[0]", 32), "nested deeper than 32 levels"},
		{"custom depth", validatedData(`{"a":{"b":[1]}}`), []proxy.ValidatedOption{proxy.WithMaxDepth(2)}, "data.a.b", "nested deeper than 2 levels"},
		{"only spaces", validatedData("  "), nil, "data", "unexpected end"},
		{"truncated", validatedData(`{"items":[1,2`), nil, "data.items[1]", "unexpected end"},
		{"trailing comma", validatedData(`{"a":1,}`), nil, "data", "unexpected '}'"},
		{"two values", validatedData(`{} {}`), nil, "data", "unexpected '{' at offset 3"},
		{"single quotes", validatedData(`{'a':1}`), nil, "data", "unexpected '\\''"},
		{"leading zero", validatedData(`[01]`), nil, "data[0]", "unexpected '1'"},
		{"bare minus", validatedData(`-`), nil, "data", "not valid JSON"},
		{"bad exponent", validatedData(`1e`), nil, "data", "not valid JSON"},
		{"bad literal", validatedData(`[tru]`), nil, "data[0]", "not valid JSON"},
		{"missing colon", validatedData(`{"a" 1}`), nil, "data.a", "unexpected '1'"},
		{"NaN", validatedData(`NaN`), nil, "data", "unexpected 'N'"},
		{"unterminated string", validatedData(`{"a":"b`), nil, "data.a", "unexpected end"},
		{"bad escape", validatedData(`{"a":"\x"}`), nil, "data.a", "not valid JSON"},
		{"short unicode escape", validatedData(`{"a":"\u12"}`), nil, "data.a", "not valid JSON"},
		{"escaped newline", validatedData(`{"msg":"line\nbreak"}`), nil, "data.msg", "control character"},
		{"escaped NUL", validatedData(`{"items":[{"name":"ok"},{"name":"a\u0000b"}]}`), nil, "data.items[1].name", "control character"},
		{"escaped C1", validatedData(`["\u009b"]`), nil, "data[0]", "control character"},
		{"escaped DEL", validatedData(`["\u007F"]`), nil, "data[0]", "control character"},
		{"raw tab", validatedData("[\"a\tb\"]"), nil, "data[0]", "control character"},
		{"raw DEL", validatedData("[\"a\x7fb\"]"), nil, "data[0]", "control character"},
		{"raw C1", validatedData("[\"a\u0085b\"]"), nil, "data[0]", "control character"},
		{"invalid UTF-8", validatedData("{\"a\":\"\xff\"}"), nil, "data.a", "not valid UTF-8"},
		{"UTF-8 surrogate", validatedData("[\"\xed\xa0\x80\"]"), nil, "data[0]", "not valid UTF-8"},
		{"lone high surrogate", validatedData(`["\ud83d"]`), nil, "data[0]", "unpaired surrogate"},
		{"high then not low", validatedData(`["\ud83d\u0041"]`), nil, "data[0]", "unpaired surrogate"},
		{"lone low surrogate", validatedData(`["\ude00x"]`), nil, "data[0]", "unpaired surrogate"},
		{"control in key", validatedData(`{"user":{"bad\u0001key":1}}`), nil, `data.user["bad\x01key"]`, "key contains a control character"},
		{"raw control in key", validatedData("{\"a\x01\":1}"), nil, `data["a\x01"]`, "key contains a control character"},
		{"quoted key in path", validatedData(`{"two words":[1,"\n"]}`), nil, `data["two words"][1]`, "control character"},
		{"escaped key in path", validatedData(`{"\u0061b":"\t"}`), nil, "data.ab", "control character"},
		{"long key in path", validatedData(`{"` + strings.Repeat("k", 100) + `":"\t"}`), nil, `data["` + strings.Repeat("k", 64) + `..."]`, "control character"},
		{"non-string key", validatedData(`{1:2}`), nil, "data", "unexpected '1'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var backend validatedBackend
			svc := proxy.Chain(&backend, proxy.Validated(tt.opts...))
			resp, err := svc.Process(t.Context(), tt.req)
			if resp != nil || !errors.Is(err, proxy.ErrInvalidRequest) {
				t.Fatalf("Process() = %v, %v, want nil, an error matching ErrInvalidRequest", resp, err)
			}
			var inv *proxy.InvalidRequestError
			if !errors.As(err, &inv) {
				t.Fatalf("Process() error = %T, want *proxy.InvalidRequestError", err)
			}
			if inv.Field != tt.wantField || !strings.Contains(inv.Reason, tt.wantIn) {
				t.Errorf("Process() error = %q: %q, want %q: ...%s...", inv.Field, inv.Reason, tt.wantField, tt.wantIn)
			}
			if backend.calls != 0 {
				t.Errorf("backend called %d times for a malformed request, want 0", backend.calls)
			}
		})
	}
}

func TestValidatedDeepDocumentDoesNotRecurse(t *testing.T) {
	// A million open brackets: a recursive parser would need a deep stack;
	// the scanner stops at the depth limit.
	deep := json.RawMessage(strings.Repeat("[", 1<<20))
	svc := proxy.Chain(&validatedBackend{}, proxy.Validated(proxy.WithMaxDataSize(2<<20)))
	_, err := svc.Process(t.Context(), validatedReq(func(r *proxy.Request) { r.Data = deep }))
	var inv *proxy.InvalidRequestError
	if !errors.As(err, &inv) || !strings.Contains(inv.Reason, "nested deeper than 32 levels") {
		t.Errorf("Process(1M brackets) error = %v, want nested deeper than 32 levels", err)
	}
	// A deeper limit than the scanner's built-in stack still works.
	svc = proxy.Chain(&validatedBackend{}, proxy.Validated(proxy.WithMaxDepth(100)))
	ok := json.RawMessage(strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100))
	if _, err := svc.Process(t.Context(), validatedReq(func(r *proxy.Request) { r.Data = ok })); err != nil {
		t.Errorf("Process(depth 100) with WithMaxDepth(100) error = %v, want nil", err)
	}
	tooDeep := json.RawMessage(strings.Repeat(`{"a":`, 101) + "1" + strings.Repeat("}", 101))
	if _, err := svc.Process(t.Context(), validatedReq(func(r *proxy.Request) { r.Data = tooDeep })); !errors.Is(err, proxy.ErrInvalidRequest) {
		t.Errorf("Process(depth 101) with WithMaxDepth(100) error = %v, want ErrInvalidRequest", err)
	}
}

func TestValidatedPanicsOnBadConfig(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"zero id length", func() { proxy.WithMaxIDLength(0) }},
		{"negative data size", func() { proxy.WithMaxDataSize(-1) }},
		{"zero depth", func() { proxy.WithMaxDepth(0) }},
		{"zero metadata value", func() { proxy.WithMaxMetadataValue(0) }},
		{"nil service", func() { proxy.Validated()(nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.HasPrefix(s, "proxy: ") {
					t.Errorf("%s: recovered %v, want a panic starting with %q", tt.name, r, "proxy: ")
				}
			}()
			tt.f()
		})
	}
}

// validatedOracle reports whether data is what Validated must accept with
// the default limits, judged by encoding/json: valid JSON and UTF-8, nesting
// at most 32 deep, no control character in any string once decoded.
func validatedOracle(data []byte) bool {
	if len(data) > 64<<10 || !json.Valid(data) || !utf8.Valid(data) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return false
	}
	var walk func(v any, depth int) bool
	clean := func(s string) bool { return !strings.ContainsFunc(s, unicode.IsControl) }
	walk = func(v any, depth int) bool {
		switch v := v.(type) {
		case string:
			return clean(v)
		case []any:
			if depth+1 > 32 {
				return false
			}
			for _, e := range v {
				if !walk(e, depth+1) {
					return false
				}
			}
		case map[string]any:
			if depth+1 > 32 {
				return false
			}
			for k, e := range v {
				if !clean(k) || !walk(e, depth+1) {
					return false
				}
			}
		}
		return true
	}
	return walk(v, 0)
}

// validatedSurrogateEscape matches a \u escape of a surrogate, which
// encoding/json decodes to U+FFFD when unpaired and Validated rejects.
func validatedHasSurrogateEscape(data []byte) bool {
	for i := 0; i+2 < len(data); i++ {
		if data[i] == '\\' && (data[i+1] == 'u' || data[i+1] == 'U') && (data[i+2] == 'd' || data[i+2] == 'D') {
			return true
		}
	}
	return false
}

func FuzzValidated(f *testing.F) {
	seeds := []string{
		`{"amount":100.5,"currency":"INR"}`, `[]`, `{}`, `"x"`, `0`, `-1.5e-3`, `true`, `null`,
		`{"a":[1,{"b":"c"}]}`, `{"a":"\n"}`, `["\u0000"]`, `["\ud83d\ude00"]`, `["\ud83d"]`,
		"[\"\xff\"]", "{\"a\x01\":1}", `{"a":1,}`, `[01]`, `{} {}`, `[` + strings.Repeat("[", 40),
		strings.Repeat("[", 32) + strings.Repeat("]", 32), strings.Repeat("[", 33) + strings.Repeat("]", 33),
		"\"\u0085\"", "\"\x7f\"", `"\/"`, `{"\u0061":"\u00e9"}`,
	}
	for _, s := range seeds {
		f.Add("req_1", "alice", []byte(s))
	}
	f.Add("", "alice", []byte(`{}`))
	f.Add("req 1", "alice\x00", []byte(nil))
	svc := proxy.Chain(&validatedBackend{}, proxy.Validated())
	f.Fuzz(func(t *testing.T, id, user string, data []byte) {
		req := &proxy.Request{ID: id, UserID: user, Data: data}
		_, err := svc.Process(context.Background(), req)
		nameOK := func(s string) bool {
			if s == "" || len(s) > 128 {
				return false
			}
			for _, c := range []byte(s) {
				if !strings.ContainsRune("._:@-", rune(c)) && !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
					return false
				}
			}
			return true
		}
		want := nameOK(id) && nameOK(user) && (len(data) == 0 || validatedOracle(data))
		if err == nil && !want {
			t.Fatalf("Process(id %q, user %q, data %q) accepted a malformed request", id, user, data)
		}
		if err != nil {
			var inv *proxy.InvalidRequestError
			if !errors.As(err, &inv) || inv.Field == "" || inv.Reason == "" {
				t.Fatalf("Process() error = %#v, want an *InvalidRequestError with a field and a reason", err)
			}
			if want && !validatedHasSurrogateEscape(data) {
				t.Fatalf("Process(id %q, user %q, data %q) = %v, want it accepted", id, user, data, err)
			}
			if nameOK(id) && nameOK(user) && !strings.HasPrefix(inv.Field, "data") {
				t.Fatalf("Process(data %q) error field = %q, want a path under data", data, inv.Field)
			}
			if !utf8.ValidString(inv.Field) || strings.ContainsFunc(inv.Field, unicode.IsControl) {
				t.Fatalf("Process(data %q) error field = %q, want printable", data, inv.Field)
			}
		}
	})
}

func BenchmarkValidated(b *testing.B) {
	svc := proxy.Chain(instrumentedStatic, proxy.Validated())
	req := validatedReq(func(r *proxy.Request) {
		r.Data = json.RawMessage(`{"amount":100.5,"currency":"INR","items":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}],"note":"gift"}`)
	})
	req.Metadata = maps.Clone(req.Metadata)
	ctx := b.Context()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(req.Data)))
		for b.Loop() {
			_, _ = svc.Process(ctx, req)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(req.Data)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = svc.Process(ctx, req)
			}
		})
	})
}
