package main

import (
	"errors"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/proxykit/proxy"
)

// userRequest is the data of a user call: {"action":"create","name","email"}
// or {"action":"get","user_id"}.
type userRequest struct {
	Action string `json:"action"`
	Name   string `json:"name"`
	Email  string `json:"email"`
	UserID string `json:"user_id"`
}

// userRecord is a stored user, and what user calls answer.
type userRecord struct {
	UserID    string    `json:"user_id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

// errStoreFull is what a demo store answers once it holds maxRemembered
// records: the service failing, not the caller.
var errStoreFull = errors.New("demo: store full")

// userBackend creates and looks up user accounts. Emails are unique; a
// repeated create with the same request id returns the first account.
type userBackend struct {
	// mu guards the fields below.
	mu      sync.Mutex
	byID    map[string]userRecord
	byEmail map[string]string
	created idempotent
}

func newUserBackend() *userBackend {
	return &userBackend{byID: map[string]userRecord{}, byEmail: map[string]string{}}
}

func (b *userBackend) handle(req *proxy.Request) (any, error) {
	u, err := decodeData[userRequest](req)
	if err != nil {
		return nil, err
	}
	switch u.Action {
	case "create":
		return b.create(req, u)
	case "get":
		if u.Name != "" || u.Email != "" {
			return nil, invalid("data", "get takes only user_id")
		}
		if u.UserID == "" {
			return nil, invalid("data.user_id", "required")
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		rec, ok := b.byID[u.UserID]
		if !ok {
			return nil, invalid("data.user_id", "no such user")
		}
		return rec, nil
	case "":
		return nil, invalid("data.action", "required: create or get")
	default:
		return nil, invalid("data.action", "want create or get; got %q", u.Action)
	}
}

func (b *userBackend) create(req *proxy.Request, u userRequest) (any, error) {
	if u.UserID != "" {
		return nil, invalid("data.user_id", "assigned by the service; leave it out")
	}
	name := strings.TrimSpace(u.Name)
	switch {
	case name == "":
		return nil, invalid("data.name", "required")
	case utf8.RuneCountInString(name) > 100:
		return nil, invalid("data.name", "at most 100 characters")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return nil, invalid("data.name", "must not contain control characters")
	}
	if !plainEmail(u.Email) {
		return nil, invalid("data.email", "want a plain email address such as priya@example.com, at most %d characters", maxEmailLen)
	}
	email := strings.ToLower(u.Email)

	b.mu.Lock()
	defer b.mu.Unlock()
	if prev, ok, err := b.created.lookup(req); err != nil || ok {
		return prev, err
	}
	if _, taken := b.byEmail[email]; taken {
		return nil, invalid("data.email", "already registered")
	}
	if len(b.byID) >= maxRemembered {
		return nil, errStoreFull
	}
	rec := userRecord{
		UserID:    demoID("usr_", email),
		Name:      name,
		Email:     u.Email,
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
	b.byID[rec.UserID] = rec
	b.byEmail[email] = rec.UserID
	b.created.remember(req, rec)
	return rec, nil
}
