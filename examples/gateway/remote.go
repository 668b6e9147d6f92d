package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/tracing"
)

// maxRemoteResponse bounds what the gateway reads from a remote backend.
const maxRemoteResponse = 4 << 20

// newRemoteClient returns the pooled HTTP client that every remote instance
// shares. It follows no redirects (a POST must not be silently re-sent
// elsewhere) and has no overall timeout: each call's context bounds it.
func newRemoteClient() *http.Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// A remoteInstance is an instance of a service reached over HTTP: the
// envelope {"id","user_id","data"} is POSTed to its URL as JSON and the
// answer is a JSON response object, {"request_id","service","instance",
// "data"}, which is also what the gateway's own process endpoint answers,
// so one gateway can stand in front of another. Errors come back as the
// gateway's error object and are mapped to the proxy's errors by status.
type remoteInstance struct {
	name   string
	url    string
	client *http.Client
	tracer trace.Tracer // nil when tracing is off
}

var _ proxy.Service = (*remoteInstance)(nil)

// A remoteError is a remote backend's failure: a status the gateway does not
// map to one of the proxy's own errors.
type remoteError struct {
	Instance string
	Status   int
	Code     string
	Message  string
}

func (e *remoteError) Error() string {
	msg := fmt.Sprintf("remote %s: HTTP %d", e.Instance, e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Unwrap lets a remote's 504 match [context.DeadlineExceeded]: the remote
// ran out of the time the gateway gave it.
func (e *remoteError) Unwrap() error {
	if e.Status == http.StatusGatewayTimeout {
		return context.DeadlineExceeded
	}
	return nil
}

// timeoutHeader tells the remote how long it has, in milliseconds, so that
// it can give up when the gateway will.
const timeoutHeader = "X-Request-Timeout-Ms"

// Process sends req to the remote instance. With tracing on, each request
// is a client span, child of the call's span, whose context goes to the
// remote in traceparent.
func (r *remoteInstance) Process(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
	if r.tracer == nil {
		resp, _, err := r.send(ctx, req)
		return resp, err
	}
	ctx, span := r.tracer.Start(ctx, http.MethodPost, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", http.MethodPost),
			attribute.String("url.full", r.url), tracing.AttrInstance.String(r.name)))
	defer span.End()
	resp, status, err := r.send(ctx, req)
	if status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, proxy.OutcomeOf(err).String())
	}
	return resp, err
}

// send posts req to the remote instance and reads its answer, whose status
// it returns too (0 when there was none).
func (r *remoteInstance) send(ctx context.Context, req *proxy.Request) (*proxy.Response, int, error) {
	resp, err := r.exchange(ctx, req)
	if resp == nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	out, err := r.read(req, resp)
	return out, resp.StatusCode, err
}

// exchange sends req to the remote instance.
func (r *remoteInstance) exchange(ctx context.Context, req *proxy.Request) (*http.Response, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("remote %s: encoding the request: %w", r.name, err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("remote %s: %w", r.name, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	if id := req.Meta(metaRequestID); id != "" {
		hreq.Header.Set("X-Request-ID", id)
	}
	injectTrace(ctx, hreq.Header)
	if key := req.Meta(proxy.MetaIdempotencyKey); key != "" {
		hreq.Header.Set("Idempotency-Key", key)
	}
	if dl, ok := ctx.Deadline(); ok {
		ms := int64(math.Ceil(float64(time.Until(dl)) / float64(time.Millisecond)))
		hreq.Header.Set(timeoutHeader, strconv.FormatInt(max(ms, 1), 10))
	}
	resp, err := r.client.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("remote %s: %w", r.name, err)
	}
	return resp, nil
}

// read reads the remote's answer to req.
func (r *remoteInstance) read(req *proxy.Request, resp *http.Response) (*proxy.Response, error) {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxRemoteResponse+1))
	if err != nil {
		return nil, fmt.Errorf("remote %s: reading the answer: %w", r.name, err)
	}
	if len(raw) > maxRemoteResponse {
		return nil, fmt.Errorf("remote %s: answer larger than %d bytes", r.name, maxRemoteResponse)
	}
	if resp.StatusCode/100 != 2 {
		return nil, r.statusError(resp, raw)
	}
	var out proxy.Response
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("remote %s: answer is not a JSON response object: %w", r.name, err)
	}
	out.RequestID = req.ID
	out.Service = req.Service
	if out.Instance == "" {
		out.Instance = r.name
	}
	out.Cached = false
	return &out, nil
}

// statusError maps a remote's error status to the proxy's errors: 400 and
// 422 are the caller's mistake, 429 a rate limit with its Retry-After, and
// anything else the backend failing.
func (r *remoteInstance) statusError(resp *http.Response, raw []byte) error {
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	_ = json.Unmarshal(raw, &body) // a body that is not our error object leaves it empty
	code, msg, field := clean(body.Error.Code, 64), clean(body.Error.Message, 300), clean(body.Error.Field, 128)
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		if field == "" {
			field = "data"
		}
		if msg == "" {
			msg = "rejected by the service"
		}
		return &proxy.InvalidRequestError{Field: field, Reason: msg}
	case http.StatusTooManyRequests:
		return &proxy.RateLimitError{Key: "instance:" + r.name, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
	}
	return &remoteError{Instance: r.name, Status: resp.StatusCode, Code: code, Message: msg}
}

// clean keeps at most n printable runes of s, so that a remote's text
// cannot forge log lines or flood an answer.
func clean(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if n == 0 {
			break
		}
		if unicode.IsPrint(r) {
			b.WriteRune(r)
			n--
		}
	}
	return b.String()
}

// parseRetryAfter reads a Retry-After of delay-seconds; an HTTP date or
// anything else is zero (unknown).
func parseRetryAfter(v string) time.Duration {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// A checkedRemote is a remote instance with a health endpoint, which makes
// it take part in active health checks.
type checkedRemote struct {
	*remoteInstance
	healthURL string
}

// errUnhealthy is what a failed remote health check wraps.
var errUnhealthy = errors.New("unhealthy")

// Health GETs the health URL; any 2xx answer is healthy.
func (r *checkedRemote) Health(ctx context.Context) error {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, r.healthURL, nil)
	if err != nil {
		return fmt.Errorf("remote %s: %w", r.name, err)
	}
	resp, err := r.client.Do(hreq)
	if err != nil {
		return fmt.Errorf("remote %s: %w", r.name, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("remote %s: %w: HTTP %d", r.name, errUnhealthy, resp.StatusCode)
	}
	return nil
}
