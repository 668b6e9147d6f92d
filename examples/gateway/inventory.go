package main

import (
	"sync"

	"github.com/proxykit/proxy"
)

// inventoryRequest is the data of an inventory call:
// {"action":"stock","sku"}, {"action":"reserve","sku","quantity"} or
// {"action":"restock","sku","quantity"}.
type inventoryRequest struct {
	Action   string `json:"action"`
	SKU      string `json:"sku"`
	Quantity *int   `json:"quantity"`
}

// stockLevel is what a stock query answers.
type stockLevel struct {
	SKU       string `json:"sku"`
	Available int    `json:"available"`
}

// reservation is what a reserve or restock answers.
type reservation struct {
	ReservationID string `json:"reservation_id,omitempty"`
	SKU           string `json:"sku"`
	Action        string `json:"action"`
	Quantity      int    `json:"quantity"`
	Available     int    `json:"available"`
}

// maxStock bounds the stock of one SKU.
const maxStock = 1_000_000_000

// demoStock is the stock the demo inventory starts with.
var demoStock = map[string]int{
	"SKU-001": 100,
	"SKU-002": 50,
	"SKU-003": 25,
	"SKU-004": 5,
	"SKU-005": 0,
}

// inventoryBackend keeps stock levels. A reservation takes stock only if
// enough is left, in one step under its lock, so concurrent reservations
// never take the stock below zero; a repeated request id reserves once.
type inventoryBackend struct {
	// mu guards the fields below.
	mu    sync.Mutex
	stock map[string]int
	done  idempotent
}

func newInventoryBackend() *inventoryBackend {
	b := &inventoryBackend{stock: map[string]int{}}
	for sku, n := range demoStock {
		b.stock[sku] = n
	}
	return b
}

func (b *inventoryBackend) handle(req *proxy.Request) (any, error) {
	r, err := decodeData[inventoryRequest](req)
	if err != nil {
		return nil, err
	}
	if r.SKU == "" {
		return nil, invalid("data.sku", "required")
	}
	if !isSKU(r.SKU) {
		return nil, invalid("data.sku", "want a SKU such as SKU-001 (upper-case letters, digits, '-')")
	}
	switch r.Action {
	case "stock":
		if r.Quantity != nil {
			return nil, invalid("data.quantity", "stock takes only sku")
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		n, ok := b.stock[r.SKU]
		if !ok {
			return nil, invalid("data.sku", "unknown SKU %q", r.SKU)
		}
		return stockLevel{SKU: r.SKU, Available: n}, nil
	case "reserve", "restock":
		if r.Quantity == nil {
			return nil, invalid("data.quantity", "required")
		}
		q := *r.Quantity
		if q < 1 || q > maxStock {
			return nil, invalid("data.quantity", "must be from 1 to %d", maxStock)
		}
		return b.change(req, r.Action, r.SKU, q)
	case "":
		return nil, invalid("data.action", "required: stock, reserve or restock")
	default:
		return nil, invalid("data.action", "want stock, reserve or restock; got %q", r.Action)
	}
}

func (b *inventoryBackend) change(req *proxy.Request, action, sku string, q int) (any, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if prev, ok, err := b.done.lookup(req); err != nil || ok {
		return prev, err
	}
	n, ok := b.stock[sku]
	if !ok {
		return nil, invalid("data.sku", "unknown SKU %q", sku)
	}
	res := reservation{SKU: sku, Action: action, Quantity: q}
	if action == "reserve" {
		if q > n {
			return nil, invalid("data.quantity", "only %d in stock", n)
		}
		n -= q
		res.ReservationID = demoID("rsv_", req.UserID, req.ID)
	} else {
		if q > maxStock-n {
			return nil, invalid("data.quantity", "stock would exceed %d", maxStock)
		}
		n += q
	}
	b.stock[sku] = n
	res.Available = n
	b.done.remember(req, res)
	return res, nil
}
