package audit_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/proxykit/proxy/audit"
)

func TestRedactorFields(t *testing.T) {
	r := audit.NewRedactor(
		[]string{"amount", "currency", "card", "items", "password"},
		[]string{"token", "card_number", "password"},
	)
	tests := []struct {
		name string
		data string
		want map[string]any
	}{
		{"keeps only listed members", `{"amount":100.50,"currency":"INR","note":"secret","token":"t"}`,
			map[string]any{"amount": json.Number("100.50"), "currency": "INR"}},
		{"redacts nested members in any case", `{"card":{"card_number":"4111","Token":"t","brand":"visa","inner":{"TOKEN":"t"}}}`,
			map[string]any{"card": map[string]any{"card_number": audit.Redacted, "Token": audit.Redacted, "brand": "visa",
				"inner": map[string]any{"TOKEN": audit.Redacted}}}},
		{"redacts inside arrays", `{"items":[{"sku":"a","token":"t"},1,"x"]}`,
			map[string]any{"items": []any{map[string]any{"sku": "a", "token": audit.Redacted}, json.Number("1"), "x"}}},
		{"kept and redacted records presence", `{"password":{"plain":"hunter2"}}`,
			map[string]any{"password": audit.Redacted}},
		{"escaped member name is redacted", `{"card":{"\u0074oken":"t"}}`,
			map[string]any{"card": map[string]any{"token": audit.Redacted}}},
		{"no kept member", `{"note":"x"}`, nil},
		{"not an object", `[1,2]`, nil},
		{"not JSON", `{"amount":`, nil},
		{"empty", ``, nil},
		{"null", `null`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.Fields([]byte(tt.data)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Fields(%s) = %#v, want %#v", tt.data, got, tt.want)
			}
		})
	}
}

func TestRedactorKeepsNothingByDefault(t *testing.T) {
	var zero audit.Redactor
	if got := zero.Fields([]byte(`{"a":1}`)); got != nil {
		t.Errorf("zero Redactor Fields() = %v, want nil", got)
	}
	if got := audit.NewRedactor(nil, []string{"a"}).Fields([]byte(`{"a":1}`)); got != nil {
		t.Errorf("NewRedactor(nil, ...) Fields() = %v, want nil", got)
	}
}

func TestRedactorConcurrent(t *testing.T) {
	r := audit.NewRedactor([]string{"card"}, []string{"token"})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			data := fmt.Sprintf(`{"card":{"token":"t%d","n":%d}}`, i, i)
			got := r.Fields([]byte(data))
			want := map[string]any{"card": map[string]any{"token": audit.Redacted, "n": json.Number(fmt.Sprint(i))}}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Fields(%s) = %v, want %v", data, got, want)
			}
		})
	}
	wg.Wait()
}

func TestNewRedactorPanicsOnEmptyName(t *testing.T) {
	for _, tt := range []struct{ keep, redact []string }{{[]string{""}, nil}, {nil, []string{""}}} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "audit: ") {
					t.Errorf("NewRedactor(%q, %q) panicked with %v, want an \"audit: \" panic", tt.keep, tt.redact, r)
				}
			}()
			audit.NewRedactor(tt.keep, tt.redact)
		}()
	}
}
