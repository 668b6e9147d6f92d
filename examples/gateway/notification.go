package main

import (
	"regexp"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/proxykit/proxy"
)

// notificationRequest is the data of a notification.
type notificationRequest struct {
	Channel string `json:"channel"`
	To      string `json:"to"`
	Subject string `json:"subject"`
	Message string `json:"message"`
}

// notificationResult is what a notification answers.
type notificationResult struct {
	NotificationID string    `json:"notification_id"`
	Channel        string    `json:"channel"`
	To             string    `json:"to"`
	Status         string    `json:"status"`
	Segments       int       `json:"segments,omitempty"`
	QueuedAt       time.Time `json:"queued_at"`
}

var (
	e164RE      = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	pushTokenRE = regexp.MustCompile(`^[A-Za-z0-9_:.-]{16,256}$`)
)

// notificationBackend queues email, SMS and push notifications. A repeated
// request id is not sent twice.
type notificationBackend struct {
	// mu guards sent.
	mu   sync.Mutex
	sent idempotent
}

func newNotificationBackend() *notificationBackend { return &notificationBackend{} }

func (b *notificationBackend) handle(req *proxy.Request) (any, error) {
	n, err := decodeData[notificationRequest](req)
	if err != nil {
		return nil, err
	}
	segments := 0
	switch n.Channel {
	case "email":
		if !plainEmail(n.To) {
			return nil, invalid("data.to", "want a plain email address such as priya@example.com, at most %d characters", maxEmailLen)
		}
		if n.Subject == "" {
			return nil, invalid("data.subject", "required for email")
		}
		if utf8.RuneCountInString(n.Subject) > 200 {
			return nil, invalid("data.subject", "at most 200 characters")
		}
	case "sms":
		if !e164RE.MatchString(n.To) {
			return nil, invalid("data.to", "want a phone number in E.164 form such as +919876543210")
		}
		if n.Subject != "" {
			return nil, invalid("data.subject", "an SMS has no subject")
		}
		segments = (utf8.RuneCountInString(n.Message) + 152) / 153
		if utf8.RuneCountInString(n.Message) <= 160 {
			segments = 1
		}
		if segments > 10 {
			return nil, invalid("data.message", "at most 10 SMS segments (1530 characters)")
		}
	case "push":
		if !pushTokenRE.MatchString(n.To) {
			return nil, invalid("data.to", "want a device token: 16 to 256 letters, digits, '_', ':', '.' or '-'")
		}
	case "":
		return nil, invalid("data.channel", "required: email, sms or push")
	default:
		return nil, invalid("data.channel", "want email, sms or push; got %q", n.Channel)
	}
	if n.Message == "" {
		return nil, invalid("data.message", "required")
	}
	if utf8.RuneCountInString(n.Message) > 5000 {
		return nil, invalid("data.message", "at most 5000 characters")
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if prev, ok, err := b.sent.lookup(req); err != nil || ok {
		return prev, err
	}
	res := notificationResult{
		NotificationID: demoID("ntf_", req.UserID, req.ID),
		Channel:        n.Channel,
		To:             n.To,
		Status:         "queued",
		Segments:       segments,
		QueuedAt:       time.Now().UTC().Truncate(time.Millisecond),
	}
	b.sent.remember(req, res)
	return res, nil
}
