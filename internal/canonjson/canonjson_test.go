package canonjson_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/proxykit/proxy/internal/canonjson"
)

// reference is the definition of the canonical form: decode the document
// with encoding/json into an any, numbers kept as written, and marshal it.
func reference(raw []byte) ([]byte, bool) {
	if !json.Valid(raw) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	return out, true
}

var appendTests = []struct {
	name string
	in   string
	want string // "" when the input is rejected
}{
	{"sorted compact", `{"a":1,"b":[true,false,null],"c":{"d":"e"}}`, `{"a":1,"b":[true,false,null],"c":{"d":"e"}}`},
	{"white space", " {\n\t\"a\" : 1 ,\r\"b\" : [ 1 , 2 ] } ", `{"a":1,"b":[1,2]}`},
	{"unsorted", `{"b":1,"a":2}`, `{"a":2,"b":1}`},
	{"unsorted nested in sorted", `{"a":{"z":1,"y":[{"q":1,"p":2}]},"b":2}`, `{"a":{"y":[{"p":2,"q":1}],"z":1},"b":2}`},
	{"unsorted around unsorted", `{"z":{"b":1,"a":2},"a":[{"d":1,"c":2}]}`, `{"a":[{"c":2,"d":1}],"z":{"a":2,"b":1}}`},
	{"prefix keys", `{"ab":1,"a":2,"":3}`, `{"":3,"a":2,"ab":1}`},
	{"duplicate keys: last wins", `{"a":1,"b":2,"a":3}`, `{"a":3,"b":2}`},
	{"duplicate keys, escaped", `{"a":1,"\u0061":{"x":2}}`, `{"a":{"x":2}}`},
	{"escaped key sorts by value", `{"\u0062":1,"a":2,"\u003c":3}`, `{"\u003c":3,"a":2,"b":1}`},
	{"quote in key", `{"a\"b":1,"a":2}`, `{"a":2,"a\"b":1}`},
	{"empty containers", `{"a":{},"b":[],"c":[{}]}`, `{"a":{},"b":[],"c":[{}]}`},
	{"numbers as written", `[0,-0,1.50,1e5,1E+5,-2.5e-3,12345678901234567890123]`, `[0,-0,1.50,1e5,1E+5,-2.5e-3,12345678901234567890123]`},
	{"top-level scalars", `"x"`, `"x"`},
	{"html escaped", `"<a href='x'>&</a>"`, `"\u003ca href='x'\u003e\u0026\u003c/a\u003e"`},
	{"short escapes", `"\b\f\n\r\t\"\\\/"`, `"\b\f\n\r\t\"\\/"`},
	{"unicode escapes decoded", `"\u00e9\u4e2d\u0041"`, `"é中A"`},
	{"control escapes", `"\u0001\u001f\u007f"`, "\"\\u0001\\u001f\x7f\""},
	{"line separators", "\"\u2028\\u2029\"", `"\u2028\u2029"`},
	{"surrogate pair", `"\ud83d\ude00"`, `"😀"`},
	{"lone high surrogate", `"\ud83dx"`, `"` + "\ufffd" + `x"`},
	{"lone low surrogate", `"\ude00"`, `"` + "\ufffd" + `"`},
	{"high then non-low", `"\ud83d\u0041"`, `"` + "\ufffd" + `A"`},
	{"invalid UTF-8", "\"a\xffb\xed\xa0\x80\"", "\"a\ufffdb\ufffd\ufffd\ufffd\""},
	{"raw DEL", "\"\x7f\"", "\"\x7f\""},

	{"empty", ``, ""},
	{"only space", ` `, ""},
	{"trailing bracket", `1]`, ""},
	{"trailing brace", `{"a":1}}`, ""},
	{"two values", `1 2`, ""},
	{"trailing comma", `[1,]`, ""},
	{"missing colon", `{"a" 1}`, ""},
	{"non-string key", `{1:2}`, ""},
	{"leading zero", `01`, ""},
	{"bare dot", `1.`, ""},
	{"bare minus", `-`, ""},
	{"bare exponent", `1e`, ""},
	{"raw control character", "\"a\x01\"", ""},
	{"bad escape", `"\x"`, ""},
	{"short unicode escape", `"\u12"`, ""},
	{"unterminated string", `"abc`, ""},
	{"unterminated object", `{"a":1`, ""},
	{"mismatched brackets", `[1}`, ""},
	{"bad literal", `tru`, ""},
	{"single quotes", `'a'`, ""},
}

func TestAppend(t *testing.T) {
	for _, tt := range appendTests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := canonjson.Append([]byte("prefix:"), []byte(tt.in))
			if tt.want == "" {
				if ok || string(got) != "prefix:" {
					t.Fatalf("Append(%q) = %q, %v, want prefix: unchanged, false", tt.in, got, ok)
				}
			} else if !ok || string(got) != "prefix:"+tt.want {
				t.Fatalf("Append(%q) = %q, %v, want %q, true", tt.in, got, ok, "prefix:"+tt.want)
			}
			want, wok := reference([]byte(tt.in))
			if wok != ok || ok && !bytes.Equal(got[len("prefix:"):], want) {
				t.Fatalf("Append(%q) = %q, %v; the reference gives %q, %v", tt.in, got, ok, want, wok)
			}
		})
	}
}

func TestAppendDepth(t *testing.T) {
	for _, tt := range []struct {
		depth int
		ok    bool
	}{{31, true}, {32, true}, {33, true}, {10000, true}, {10001, false}} {
		doc := strings.Repeat(`[{"b":1,"a":`, tt.depth/2) + strings.Repeat("[", tt.depth%2) + "0" +
			strings.Repeat("]", tt.depth%2) + strings.Repeat("}]", tt.depth/2)
		got, ok := canonjson.Append(nil, []byte(doc))
		if ok != tt.ok {
			t.Fatalf("Append(document %d deep) ok = %v, want %v", tt.depth, ok, tt.ok)
		}
		if want, _ := reference([]byte(doc)); ok && !bytes.Equal(got, want) {
			t.Fatalf("Append(document %d deep) differs from the reference", tt.depth)
		}
	}
}

func TestAppendManyMembers(t *testing.T) {
	// More members than Append records without allocating, in reverse
	// order, with nested objects that also need sorting.
	var sb strings.Builder
	sb.WriteByte('{')
	for i := 200; i > 0; i-- {
		if i < 200 {
			sb.WriteByte(',')
		}
		sb.WriteString(`"k` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `":{"z":1,"y":2}`)
	}
	sb.WriteByte('}')
	doc := []byte(sb.String())
	got, ok := canonjson.Append(nil, doc)
	want, wok := reference(doc)
	if !ok || !wok || !bytes.Equal(got, want) {
		t.Fatalf("Append(200 members) = %q, %v; want %q, %v", got, ok, want, wok)
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	docs := []string{
		`{"amount":100.5,"currency":"EUR","items":[{"qty":2,"sku":"A-1"}]}`,
		` { "amount" : 100.5, "currency" : "EUR" } `,
		`["é",1,true,null,{}]`,
	}
	buf := make([]byte, 0, 256)
	for _, doc := range docs {
		raw := []byte(doc)
		if n := testing.AllocsPerRun(100, func() { canonjson.Append(buf, raw) }); n != 0 {
			t.Errorf("Append(%s) allocates %v times, want 0", doc, n)
		}
	}
}

func FuzzAppend(f *testing.F) {
	for _, tt := range appendTests {
		f.Add([]byte(tt.in))
	}
	f.Add([]byte(`{"b":{"d":1,"c":[1,{"f":1,"e":2}]},"a":"\u00e9"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		orig := bytes.Clone(raw)
		got, ok := canonjson.Append([]byte("p"), raw)
		want, wok := reference(raw)
		if ok != wok {
			t.Fatalf("Append(%q) ok = %v; the reference says %v", raw, ok, wok)
		}
		if !ok {
			if string(got) != "p" {
				t.Fatalf("Append(%q) = %q, false; want dst unchanged", raw, got)
			}
			return
		}
		if !bytes.Equal(got[1:], want) {
			t.Fatalf("Append(%q) = %q, want %q", raw, got[1:], want)
		}
		if !bytes.Equal(raw, orig) {
			t.Fatalf("Append changed its input to %q", raw)
		}
		// The canonical form is a fixed point.
		again, ok := canonjson.Append(nil, want)
		if !ok || !bytes.Equal(again, want) {
			t.Fatalf("Append(%q) = %q, %v; want it unchanged", want, again, ok)
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	for _, bm := range []struct{ name, doc string }{
		{"sorted", `{"amount":100.5,"currency":"EUR","items":[{"qty":2,"sku":"A-1"}]}`},
		{"unsorted", `{"items":[{"sku":"A-1","qty":2}],"currency":"EUR","amount":100.5}`},
		{"spaced", "{\n  \"amount\": 100.5,\n  \"currency\": \"EUR\",\n  \"items\": [{\"qty\": 2, \"sku\": \"A-1\"}]\n}"},
	} {
		raw := []byte(bm.doc)
		b.Run(bm.name+"/impl=streaming", func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 256)
			for b.Loop() {
				buf, _ = canonjson.Append(buf[:0], raw)
			}
		})
		b.Run(bm.name+"/impl=reference", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				reference(raw)
			}
		})
	}
}
