package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxykit/proxy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func demoReq(id, user, data string) *proxy.Request {
	return &proxy.Request{ID: id, UserID: user, Service: "demo", Data: json.RawMessage(data)}
}

// longEmail is a valid email address one byte over maxEmailLen: what the
// demo services remember must stay small, however large the body.
var longEmail = strings.Repeat("a", maxEmailLen-len("@example.com")+1) + "@example.com"

func TestDemoValidation(t *testing.T) {
	for _, tc := range []struct {
		kind      string
		data      string
		wantField string // "" means success
	}{
		{"payment", `{"amount":100.50,"currency":"INR"}`, ""},
		{"payment", `{"amount":100,"currency":"JPY","method":"upi"}`, ""},
		{"payment", `{"amount":1.005,"currency":"KWD"}`, ""},
		{"payment", `{"amount":0,"currency":"INR"}`, "data.amount"},
		{"payment", `{"amount":-3,"currency":"INR"}`, "data.amount"},
		{"payment", `{"amount":"100","currency":"INR"}`, "data.amount"},
		{"payment", `{"amount":1e3,"currency":"INR"}`, "data.amount"},
		{"payment", `{"amount":1.5,"currency":"JPY"}`, "data.amount"},
		{"payment", `{"amount":1.234,"currency":"USD"}`, "data.amount"},
		{"payment", `{"amount":99999999999999999999,"currency":"USD"}`, "data.amount"},
		{"payment", `{"currency":"INR"}`, "data.amount"},
		{"payment", `{"amount":5,"currency":"inr"}`, "data.currency"},
		{"payment", `{"amount":5,"currency":"ABC"}`, "data.currency"},
		{"payment", `{"amount":5}`, "data.currency"},
		{"payment", `{"amount":5,"currency":"INR","method":"cash"}`, "data.method"},
		{"payment", `{"amount":5,"currency":"INR","tip":1}`, "data.tip"},
		{"payment", `{"amount":5,"currency":7}`, "data.currency"},
		{"payment", `[1]`, "data"},
		{"payment", ``, "data"},
		{"notification", `{"channel":"email","to":"priya@example.com","subject":"Hi","message":"Welcome"}`, ""},
		{"notification", `{"channel":"sms","to":"+919876543210","message":"OTP 1234"}`, ""},
		{"notification", `{"channel":"push","to":"fcm-token-0123456789abcdef","message":"Ping"}`, ""},
		{"notification", `{"channel":"email","to":"Priya <priya@example.com>","subject":"Hi","message":"x"}`, "data.to"},
		{"notification", `{"channel":"email","to":"nobody","subject":"Hi","message":"x"}`, "data.to"},
		{"notification", `{"channel":"email","to":"` + longEmail + `","subject":"Hi","message":"x"}`, "data.to"},
		{"notification", `{"channel":"email","to":"priya@example.com","message":"x"}`, "data.subject"},
		{"notification", `{"channel":"sms","to":"98765","message":"x"}`, "data.to"},
		{"notification", `{"channel":"fax","to":"x","message":"x"}`, "data.channel"},
		{"notification", `{"to":"x","message":"x"}`, "data.channel"},
		{"notification", `{"channel":"push","to":"short","message":"x"}`, "data.to"},
		{"notification", `{"channel":"sms","to":"+919876543210"}`, "data.message"},
		{"user", `{"action":"create","name":"Priya","email":"priya@example.com"}`, ""},
		{"user", `{"action":"create","name":"","email":"a@example.com"}`, "data.name"},
		{"user", `{"action":"create","name":"A","email":"bad"}`, "data.email"},
		{"user", `{"action":"create","name":"A","email":"` + longEmail + `"}`, "data.email"},
		{"user", `{"action":"get","user_id":"usr_missing"}`, "data.user_id"},
		{"user", `{"action":"delete"}`, "data.action"},
		{"order", `{"action":"create","currency":"INR","items":[{"sku":"SKU-001","quantity":2,"unit_price":10.25}]}`, ""},
		{"order", `{"action":"create","currency":"INR","items":[]}`, "data.items"},
		{"order", `{"action":"create","currency":"INR","items":[{"sku":"bad sku","quantity":1,"unit_price":1}]}`, "data.items[0].sku"},
		{"order", `{"action":"create","currency":"INR","items":[{"sku":"SKU-1","quantity":0,"unit_price":1}]}`, "data.items[0].quantity"},
		{"order", `{"action":"create","currency":"INR","items":[{"sku":"SKU-1","quantity":1,"unit_price":-1}]}`, "data.items[0].unit_price"},
		{"order", `{"action":"create","currency":"INR","items":[{"sku":"SKU-1","quantity":10000,"unit_price":999999999999}]}`, "data.items"},
		{"order", `{"action":"get","order_id":"ord_nope"}`, "data.order_id"},
		{"inventory", `{"action":"stock","sku":"SKU-001"}`, ""},
		{"inventory", `{"action":"reserve","sku":"SKU-002","quantity":5}`, ""},
		{"inventory", `{"action":"reserve","sku":"SKU-005","quantity":1}`, "data.quantity"},
		{"inventory", `{"action":"reserve","sku":"SKU-001"}`, "data.quantity"},
		{"inventory", `{"action":"reserve","sku":"SKU-001","quantity":-1}`, "data.quantity"},
		{"inventory", `{"action":"stock","sku":"SKU-999"}`, "data.sku"},
		{"inventory", `{"action":"stock"}`, "data.sku"},
		{"inventory", `{"action":"steal","sku":"SKU-001"}`, "data.action"},
	} {
		t.Run(tc.kind+" "+tc.data, func(t *testing.T) {
			b := demoFactories[tc.kind]()
			_, err := b.handle(demoReq("req_1", "user_1", tc.data))
			if tc.wantField == "" {
				require.NoError(t, err)
				return
			}
			var ire *proxy.InvalidRequestError
			require.True(t, errors.As(err, &ire), "handle() = %v, want an *InvalidRequestError", err)
			assert.Equal(t, tc.wantField, ire.Field)
			assert.ErrorIs(t, err, proxy.ErrInvalidRequest)
		})
	}
}

func TestPaymentIsIdempotent(t *testing.T) {
	b := newPaymentBackend()
	first, err := b.handle(demoReq("req_1", "u", `{"amount":10,"currency":"USD"}`))
	require.NoError(t, err)
	// Same request, other spacing and key order: the first result.
	again, err := b.handle(demoReq("req_1", "u", `{ "currency":"USD", "amount":10 }`))
	require.NoError(t, err)
	assert.Equal(t, first, again)
	// The same id for another payment is refused.
	_, err = b.handle(demoReq("req_1", "u", `{"amount":11,"currency":"USD"}`))
	var ire *proxy.InvalidRequestError
	require.ErrorAs(t, err, &ire)
	assert.Equal(t, "id", ire.Field)
	// Another user's req_1 is another payment.
	other, err := b.handle(demoReq("req_1", "v", `{"amount":10,"currency":"USD"}`))
	require.NoError(t, err)
	assert.NotEqual(t, first.(paymentResult).PaymentID, other.(paymentResult).PaymentID)
	// A payment needs an id to be deduplicated on.
	_, err = b.handle(demoReq("", "u", `{"amount":10,"currency":"USD"}`))
	require.ErrorAs(t, err, &ire)
	assert.Equal(t, "id", ire.Field)
}

func TestUserAndOrderFlows(t *testing.T) {
	users := newUserBackend()
	created, err := users.handle(demoReq("r1", "u", `{"action":"create","name":"Priya","email":"priya@example.com"}`))
	require.NoError(t, err)
	id := created.(userRecord).UserID
	got, err := users.handle(demoReq("r2", "u", `{"action":"get","user_id":"`+id+`"}`))
	require.NoError(t, err)
	assert.Equal(t, created, got)
	_, err = users.handle(demoReq("r3", "u", `{"action":"create","name":"P2","email":"PRIYA@example.com"}`))
	assert.ErrorIs(t, err, proxy.ErrInvalidRequest, "emails are unique, whatever their case")

	orders := newOrderBackend()
	o, err := orders.handle(demoReq("o1", "alice", `{"action":"create","currency":"INR","items":[{"sku":"SKU-001","quantity":3,"unit_price":10.25},{"sku":"SKU-002","quantity":1,"unit_price":0.5}]}`))
	require.NoError(t, err)
	rec := o.(orderRecord)
	assert.Equal(t, "31.25", rec.Total)
	assert.Equal(t, "30.75", rec.Items[0].Amount)
	got, err = orders.handle(demoReq("o2", "alice", `{"action":"get","order_id":"`+rec.OrderID+`"}`))
	require.NoError(t, err)
	assert.Equal(t, o, got)
	_, err = orders.handle(demoReq("o3", "bob", `{"action":"get","order_id":"`+rec.OrderID+`"}`))
	assert.ErrorIs(t, err, proxy.ErrInvalidRequest, "bob cannot read alice's order")
}

// TestInventoryNeverBelowZero reserves concurrently more than there is:
// exactly the stock is reserved, never more.
func TestInventoryNeverBelowZero(t *testing.T) {
	b := newInventoryBackend()
	const workers = 50
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			_, err := b.handle(demoReq(fmt.Sprintf("r%d", i), "u", `{"action":"reserve","sku":"SKU-003","quantity":1}`))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, proxy.ErrInvalidRequest):
				refused.Add(1)
			default:
				t.Errorf("reserve = %v", err)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(demoStock["SKU-003"]), ok.Load(), "reservations that succeeded")
	assert.Equal(t, int64(workers-demoStock["SKU-003"]), refused.Load())
	level, err := b.handle(demoReq("s", "u", `{"action":"stock","sku":"SKU-003"}`))
	require.NoError(t, err)
	assert.Equal(t, stockLevel{SKU: "SKU-003", Available: 0}, level)
	// A retried reservation is not a second one.
	_, err = b.handle(demoReq("re", "u", `{"action":"restock","sku":"SKU-003","quantity":2}`))
	require.NoError(t, err)
	first, err := b.handle(demoReq("once", "u", `{"action":"reserve","sku":"SKU-003","quantity":1}`))
	require.NoError(t, err)
	again, err := b.handle(demoReq("once", "u", `{"action":"reserve","sku":"SKU-003","quantity":1}`))
	require.NoError(t, err)
	assert.Equal(t, first, again)
	assert.Equal(t, 1, again.(reservation).Available)
}

func TestDemoInstanceFaults(t *testing.T) {
	ctx := context.Background()
	count := func(seed uint64) []bool {
		in := newDemoInstance("p-1", "payment", newPaymentBackend(), fault{ErrorRate: 0.5}, seed)
		var failed []bool
		for i := range 200 {
			_, err := in.Process(ctx, demoReq(fmt.Sprint(i), "u", `{"amount":1,"currency":"USD"}`))
			failed = append(failed, errors.Is(err, errInjected))
		}
		return failed
	}
	a, b := count(7), count(7)
	assert.Equal(t, a, b, "the same seed stages the same failures")
	n := 0
	for _, f := range a {
		if f {
			n++
		}
	}
	assert.True(t, n > 50 && n < 150, "failures at rate 0.5 = %d of 200", n)

	in := newDemoInstance("p-2", "payment", newPaymentBackend(), fault{Down: true}, 1)
	_, err := in.Process(ctx, demoReq("x", "u", `{"amount":1,"currency":"USD"}`))
	assert.ErrorIs(t, err, errInstanceDown)
	assert.ErrorIs(t, in.Health(ctx), errInstanceDown)
	in.setFault(fault{})
	assert.NoError(t, in.Health(ctx))

	// A slow instance gives up when the caller's context ends.
	in.setFault(fault{Latency: time.Hour})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = in.Process(cctx, demoReq("y", "u", `{"amount":1,"currency":"USD"}`))
	assert.ErrorIs(t, err, context.Canceled)
}

func TestMoney(t *testing.T) {
	for _, tc := range []struct {
		minor int64
		units int
		want  string
	}{{10050, 2, "100.50"}, {5, 2, "0.05"}, {7, 0, "7"}, {1005, 3, "1.005"}, {1, 3, "0.001"}} {
		assert.Equal(t, tc.want, formatAmount(tc.minor, tc.units), "formatAmount(%d, %d)", tc.minor, tc.units)
	}
	got, err := parseAmount("a", json.RawMessage(`100.50`), 2)
	require.NoError(t, err)
	assert.Equal(t, int64(10050), got)
	got, err = parseAmount("a", json.RawMessage(`0.10`), 1)
	require.NoError(t, err)
	assert.Equal(t, int64(1), got)
}

// TestDecodeDataFastPath checks decodeData against the strict decoder it
// stands for, on data its fast path takes and on data it must leave alone.
func TestDecodeDataFastPath(t *testing.T) {
	assert.Equal(t, []string{"amount", "currency", "method", "description"}, flatTypeOf(reflect.TypeFor[paymentRequest]()).names)
	assert.Equal(t, []string{"action", "sku", "quantity"}, flatTypeOf(reflect.TypeFor[inventoryRequest]()).names)
	assert.Nil(t, flatTypeOf(reflect.TypeFor[orderRequest]()), "a type with a list of structs is not flat")
	for _, data := range []string{
		`{"amount":10.5,"currency":"EUR","method":"card","description":"x"}`,
		` { "amount" : "10" , "currency" : "EUR" } `,
		`{}`,
		`{"Amount":10,"currency":"EUR"}`,
		`{"amount":10,"currency":"EUR","extra":{"a":1}}`,
		`{"amount":10,"currency":1}`,
		`{"curr\u0065ncy":"EUR"}`,
		`[1]`,
		`"s"`,
		`{"amount":1}{"amount":2}`,
		`{"amount":null,"currency":"EUR"}`,
		`{"amount":"10","currency":"café","method":"carte bancaire"}`,
		`{"amount":1e2,"currency":"EUR",}`,
		`{"amount":true,"currency":"EUR"}`,
	} {
		decodeDataMatchesStrict[paymentRequest](t, data)
	}
	for _, data := range []string{
		`{"action":"stock","sku":"SKU-001"}`,
		`{"action":"reserve","sku":"SKU-001","quantity":3}`,
		`{"action":"reserve","sku":"SKU-001","quantity":null}`,
		`{"action":"reserve","sku":"SKU-001","quantity":1.5}`,
		`{"action":"reserve","Quantity":2}`,
		`{"action":"reserve","sku":"SKU-001","quantity":-0}`,
		`{"action":"reserve","sku":"SKU-001","quantity":99999999999999999999}`,
		`{"action":"reserve","sku":"SKU-001","quantity":"3"}`,
		`{"action":"reserve","sku":"SKU-001","quantity":3,"quantity":null}`,
		`{"action":null,"sku":"SKU-001"}`,
		`{"action":"stock","sku":1}`,
		`{"action":"stock" "sku":"SKU-001"}`,
	} {
		decodeDataMatchesStrict[inventoryRequest](t, data)
	}
}

// decodeDataMatchesStrict checks that decodeData[T] takes data exactly when
// a strict decoder does, and decodes it the same.
func decodeDataMatchesStrict[T any](t *testing.T, data string) {
	t.Helper()
	got, gotErr := decodeData[T](demoReq("r", "u", data))
	var want T
	dec := json.NewDecoder(strings.NewReader(data))
	dec.DisallowUnknownFields()
	strictOK := dec.Decode(&want) == nil && !dec.More()
	if (gotErr == nil) != strictOK {
		t.Errorf("decodeData(%s) = %v, want ok %v", data, gotErr, strictOK)
		return
	}
	if strictOK {
		assert.Equal(t, want, got, "decodeData(%s)", data)
	}
}
