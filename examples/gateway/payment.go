package main

import (
	"encoding/json"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/proxykit/proxy"
)

// paymentRequest is the data of a payment.
type paymentRequest struct {
	Amount      json.RawMessage `json:"amount"`
	Currency    string          `json:"currency"`
	Method      string          `json:"method"`
	Description string          `json:"description"`
}

// paymentResult is what a payment answers.
type paymentResult struct {
	PaymentID   string    `json:"payment_id"`
	Status      string    `json:"status"`
	Amount      string    `json:"amount"`
	Currency    string    `json:"currency"`
	Method      string    `json:"method"`
	Description string    `json:"description,omitempty"`
	ProcessedAt time.Time `json:"processed_at"`
}

var paymentMethods = []string{"card", "upi", "netbanking", "wallet"}

// paymentBackend captures payments. Processing one request id twice returns
// the first result and charges once, so a retry of a payment is safe.
type paymentBackend struct {
	// mu guards done.
	mu   sync.Mutex
	done idempotent
}

func newPaymentBackend() *paymentBackend { return &paymentBackend{} }

func (b *paymentBackend) handle(req *proxy.Request) (any, error) {
	if req.ID == "" {
		return nil, invalid("id", "required: payments are deduplicated on it")
	}
	p, err := decodeData[paymentRequest](req)
	if err != nil {
		return nil, err
	}
	units, err := checkCurrency("data.currency", p.Currency)
	if err != nil {
		return nil, err
	}
	minor, err := parseAmount("data.amount", p.Amount, units)
	if err != nil {
		return nil, err
	}
	if p.Method == "" {
		p.Method = "card"
	}
	if !slices.Contains(paymentMethods, p.Method) {
		return nil, invalid("data.method", "want one of card, upi, netbanking, wallet; got %q", p.Method)
	}
	if utf8.RuneCountInString(p.Description) > 200 {
		return nil, invalid("data.description", "at most 200 characters")
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if prev, ok, err := b.done.lookup(req); err != nil || ok {
		return prev, err
	}
	res := paymentResult{
		PaymentID:   demoID("pay_", req.UserID, req.ID),
		Status:      "captured",
		Amount:      formatAmount(minor, units),
		Currency:    p.Currency,
		Method:      p.Method,
		Description: p.Description,
		ProcessedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
	b.done.remember(req, res)
	return res, nil
}
