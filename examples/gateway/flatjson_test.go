package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// flatAll has a field of every kind decodeFlat sets.
type flatAll struct {
	S   string          `json:"s"`
	PS  *string         `json:"ps,omitempty"`
	I   int             `json:"i"`
	PI  *int            `json:"pi"`
	I32 int32           `json:"i32"`
	U   uint            `json:"u"`
	U32 uint32          `json:"u32"`
	F   float64         `json:"f"`
	F32 float32         `json:"f32"`
	B   bool            `json:"b"`
	PB  *bool           `json:"pb"`
	Raw json.RawMessage `json:"raw"`
}

// flatTwice names two fields alike, which encoding/json decodes neither
// of. (Made with reflect, as go vet refuses the struct written out.)
var flatTwice = reflect.StructOf([]reflect.StructField{
	{Name: "A", Type: reflect.TypeFor[string](), Tag: `json:"x"`},
	{Name: "B", Type: reflect.TypeFor[string](), Tag: `json:"x"`},
})

// flatCustom has a field that decodes itself.
type flatCustom struct {
	D time.Time `json:"d"`
	S string    `json:"s"`
}

func TestFlatTypeOf(t *testing.T) {
	for _, tc := range []struct {
		typ        reflect.Type
		wantNames  []string
		wantFields bool
	}{
		{reflect.TypeFor[flatAll](), []string{"s", "ps", "i", "pi", "i32", "u", "u32", "f", "f32", "b", "pb", "raw"}, true},
		{reflect.TypeFor[inventoryRequest](), []string{"action", "sku", "quantity"}, true},
		{reflect.TypeFor[paymentRequest](), []string{"amount", "currency", "method", "description"}, true},
		{flatTwice, []string{"x", "x"}, false},
		{reflect.TypeFor[flatCustom](), nil, false}, // time.Time is a struct
		{reflect.TypeFor[orderRequest](), nil, false},
		{reflect.TypeFor[string](), nil, false},
	} {
		ft := flatTypeOf(tc.typ)
		if tc.wantNames == nil {
			assert.Nil(t, ft, "flatTypeOf(%v)", tc.typ)
			continue
		}
		if assert.NotNil(t, ft, "flatTypeOf(%v)", tc.typ) {
			assert.Equal(t, tc.wantNames, ft.names, "flatTypeOf(%v).names", tc.typ)
			assert.Equal(t, tc.wantFields, ft.fields != nil, "flatTypeOf(%v).fields != nil", tc.typ)
		}
	}
	type textual struct {
		D time.Duration `json:"d"`
		N json.Number   `json:"n"`
		T flatText      `json:"t"`
	}
	ft := flatTypeOf(reflect.TypeFor[textual]())
	if assert.NotNil(t, ft, "flatTypeOf(textual)") {
		assert.Nil(t, ft.fields, "flatTypeOf(textual).fields: a type that decodes itself is left to encoding/json")
	}
}

// flatText decodes itself from a JSON string.
type flatText string

func (f *flatText) UnmarshalText(b []byte) error {
	*f = flatText(strings.ToUpper(string(b)))
	return nil
}

// TestDecodeFlat checks decodeFlat against json.Unmarshal: what it takes,
// json.Unmarshal decodes without error and alike, and the plain data of
// every kind it does take.
func TestDecodeFlat(t *testing.T) {
	for _, tc := range []struct {
		data string
		take bool
	}{
		{`{}`, true},
		{" \t\r\n{ } \n", true},
		{`{"s":"x","i":-12,"pi":3,"i32":2147483647,"u":7,"u32":4294967295,"f":-1.5e-3,"f32":2.5,"b":true,"pb":false,"raw":12.5E+2}`, true},
		{`{"s":"café ✓","ps":"y","raw":"a b"}`, true},
		{`{"s":null,"pi":null,"raw":null,"pb":null}`, true},
		{`{"raw":true}`, true},
		{`{"raw":false}`, true},
		{`{"i":1,"i":2}`, true},
		{`{"i":0}`, true},
		{`{"f":0.0}`, true},
		{` { "s" : "x" , "i" : 1 } `, true},
		{`{"i32":2147483648}`, false},
		{`{"u32":4294967296}`, false},
		{`{"u":-1}`, false},
		{`{"i":1.5}`, false},
		{`{"i":1e2}`, false},
		{`{"f32":1e39}`, false},
		{`{"i":01}`, false},
		{`{"i":-}`, false},
		{`{"i":1.}`, false},
		{`{"i":.5}`, false},
		{`{"f":1e}`, false},
		{`{"i":+1}`, false},
		{`{"s":1}`, false},
		{`{"i":"1"}`, false},
		{`{"b":"true"}`, false},
		{`{"b":1}`, false},
		{`{"b":tru}`, false},
		{`{"b":nul}`, false},
		{`{"b":nullx}`, false},
		{`{"s":"a\"b"}`, false},
		{`{"s":"a\u0062"}`, false},
		{"{\"s\":\"a\tb\"}", false},
		{"{\"s\":\"\xff\"}", false},
		{`{"S":"x"}`, false},
		{`{"s\u0000":"x"}`, false},
		{`{"nope":1}`, false},
		{`{"raw":{"a":1}}`, false},
		{`{"raw":[1]}`, false},
		{`{"s":"x",}`, false},
		{`{"s":"x"`, false},
		{`{"s":"x"}}`, false},
		{`{"s":"x"} x`, false},
		{`{"s" "x"}`, false},
		{`{"s":}`, false},
		{`{"s":"x" "i":1}`, false},
		{`{"s`, false},
		{`{`, false},
		{`[]`, false},
		{``, false},
		{`null`, false},
	} {
		var got flatAll
		took := decodeFlat([]byte(tc.data), reflect.ValueOf(&got).Elem(), flatTypeOf(reflect.TypeFor[flatAll]()))
		assert.Equal(t, tc.take, took, "decodeFlat(%s)", tc.data)
		if took {
			var want flatAll
			if assert.NoError(t, json.Unmarshal([]byte(tc.data), &want), "json.Unmarshal(%s) of what decodeFlat takes", tc.data) {
				assert.Equal(t, want, got, "decodeFlat(%s)", tc.data)
			}
		}
	}
}

// FuzzDecodeFlat holds decodeFlat to json.Unmarshal on any data: what it
// takes must decode alike, with only known keys spelled exactly.
func FuzzDecodeFlat(f *testing.F) {
	for _, seed := range []string{
		`{"s":"x","i":-12,"pi":3,"i32":2147483647,"u":7,"u32":4294967295,"f":-1.5e-3,"f32":2.5,"b":true,"pb":false,"raw":12.5E+2}`,
		`{"s":null,"pi":null,"raw":null,"pb":null}`,
		`{"action":"stock","sku":"SKU-001"}`,
		`{"i":1.5}`, `{"s":"a\"b"}`, `{"raw":{"a":1}}`, ` {} `,
	} {
		f.Add([]byte(seed))
	}
	ft := flatTypeOf(reflect.TypeFor[flatAll]())
	f.Fuzz(func(t *testing.T, data []byte) {
		var got flatAll
		if !decodeFlat(data, reflect.ValueOf(&got).Elem(), ft) {
			return
		}
		var want flatAll
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("decodeFlat(%q) took what json.Unmarshal refuses: %v", data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeFlat(%q) = %+v, want %+v", data, got, want)
		}
		if !topKeysIn(data, ft.names) {
			t.Fatalf("decodeFlat(%q) took a key that is not a field name", data)
		}
	})
}
