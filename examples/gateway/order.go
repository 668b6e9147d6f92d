package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/proxykit/proxy"
)

// orderRequest is the data of an order call:
// {"action":"create","currency","items":[{"sku","quantity","unit_price"}]}
// or {"action":"get","order_id"}.
type orderRequest struct {
	Action   string      `json:"action"`
	Currency string      `json:"currency"`
	Items    []orderItem `json:"items"`
	OrderID  string      `json:"order_id"`
}

type orderItem struct {
	SKU       string          `json:"sku"`
	Quantity  int             `json:"quantity"`
	UnitPrice json.RawMessage `json:"unit_price"`
}

// orderRecord is a stored order, and what order calls answer.
type orderRecord struct {
	OrderID   string      `json:"order_id"`
	UserID    string      `json:"user_id"`
	Status    string      `json:"status"`
	Currency  string      `json:"currency"`
	Items     []orderLine `json:"items"`
	Total     string      `json:"total"`
	CreatedAt time.Time   `json:"created_at"`
}

type orderLine struct {
	SKU       string `json:"sku"`
	Quantity  int    `json:"quantity"`
	UnitPrice string `json:"unit_price"`
	Amount    string `json:"amount"`
}

// skuRE is what a SKU looks like. isSKU is the same check, without the
// regexp engine, for every call.
var skuRE = regexp.MustCompile(`^[A-Z0-9][A-Z0-9-]{0,31}$`)

// isSKU reports whether s matches skuRE, without the regexp engine.
func isSKU(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

const (
	maxOrderItems    = 100
	maxOrderQuantity = 10_000
)

// orderBackend creates orders and looks them up for their owner. A repeated
// create with the same request id returns the first order.
type orderBackend struct {
	// mu guards the fields below.
	mu      sync.Mutex
	orders  map[string]orderRecord
	created idempotent
}

func newOrderBackend() *orderBackend { return &orderBackend{orders: map[string]orderRecord{}} }

func (b *orderBackend) handle(req *proxy.Request) (any, error) {
	o, err := decodeData[orderRequest](req)
	if err != nil {
		return nil, err
	}
	switch o.Action {
	case "create":
		return b.create(req, o)
	case "get":
		if o.Currency != "" || o.Items != nil {
			return nil, invalid("data", "get takes only order_id")
		}
		if o.OrderID == "" {
			return nil, invalid("data.order_id", "required")
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		rec, ok := b.orders[o.OrderID]
		if !ok || rec.UserID != req.UserID {
			return nil, invalid("data.order_id", "no such order for this user")
		}
		return rec, nil
	case "":
		return nil, invalid("data.action", "required: create or get")
	default:
		return nil, invalid("data.action", "want create or get; got %q", o.Action)
	}
}

func (b *orderBackend) create(req *proxy.Request, o orderRequest) (any, error) {
	if req.UserID == "" {
		return nil, invalid("user_id", "required: an order belongs to a user")
	}
	if o.OrderID != "" {
		return nil, invalid("data.order_id", "assigned by the service; leave it out")
	}
	units, err := checkCurrency("data.currency", o.Currency)
	if err != nil {
		return nil, err
	}
	switch {
	case len(o.Items) == 0:
		return nil, invalid("data.items", "required: at least one item")
	case len(o.Items) > maxOrderItems:
		return nil, invalid("data.items", "at most %d items", maxOrderItems)
	}
	lines := make([]orderLine, 0, len(o.Items))
	var total int64
	for i, it := range o.Items {
		f := fmt.Sprintf("data.items[%d]", i)
		if !isSKU(it.SKU) {
			return nil, invalid(f+".sku", "want a SKU such as SKU-001 (upper-case letters, digits, '-')")
		}
		if it.Quantity < 1 || it.Quantity > maxOrderQuantity {
			return nil, invalid(f+".quantity", "must be from 1 to %d", maxOrderQuantity)
		}
		price, err := parseAmount(f+".unit_price", it.UnitPrice, units)
		if err != nil {
			return nil, err
		}
		if price > (maxMinorUnits-total)/int64(it.Quantity) {
			return nil, invalid("data.items", "order total too large")
		}
		amount := price * int64(it.Quantity)
		total += amount
		lines = append(lines, orderLine{
			SKU: it.SKU, Quantity: it.Quantity,
			UnitPrice: formatAmount(price, units), Amount: formatAmount(amount, units),
		})
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if prev, ok, err := b.created.lookup(req); err != nil || ok {
		return prev, err
	}
	if len(b.orders) >= maxRemembered {
		return nil, errStoreFull
	}
	rec := orderRecord{
		OrderID:   demoID("ord_", req.UserID, req.ID),
		UserID:    req.UserID,
		Status:    "created",
		Currency:  o.Currency,
		Items:     lines,
		Total:     formatAmount(total, units),
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
	b.orders[rec.OrderID] = rec
	b.created.remember(req, rec)
	return rec, nil
}
