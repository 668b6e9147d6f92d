package proxy

import (
	"context"
	"fmt"
	"strconv"

	"github.com/proxykit/proxy/internal/jsoncheck"
)

// The limits Validated applies unless told otherwise.
const (
	defaultMaxIDLength      = 128
	defaultMaxDataSize      = 64 << 10
	defaultMaxDepth         = 32
	defaultMaxMetadataValue = 1024
	// maxMetadataEntries bounds the number of metadata entries. The gateway
	// sets a handful; 64 leaves room for a caller's own.
	maxMetadataEntries = 64
)

// A ValidatedOption configures [Validated].
type ValidatedOption func(*validatedConfig)

type validatedConfig struct {
	maxIDLength      int
	maxDataSize      int
	maxDepth         int
	maxMetadataValue int
}

func validatedPositive(option string, n int) {
	if n < 1 {
		panic(fmt.Sprintf("proxy: %s(%d): need at least 1", option, n))
	}
}

// WithMaxIDLength sets the longest ID, UserID, Service and metadata key that
// Validated accepts, in bytes. The default is 128. It panics if n is less
// than 1.
func WithMaxIDLength(n int) ValidatedOption {
	validatedPositive("WithMaxIDLength", n)
	return func(c *validatedConfig) { c.maxIDLength = n }
}

// WithMaxDataSize sets the largest Data that Validated accepts, in bytes.
// The default is 64 KiB. It panics if n is less than 1.
func WithMaxDataSize(n int) ValidatedOption {
	validatedPositive("WithMaxDataSize", n)
	return func(c *validatedConfig) { c.maxDataSize = n }
}

// WithMaxDepth sets how deeply the arrays and objects of Data may nest: 1
// allows {"a":1} but not {"a":[1]}. The default is 32. It panics if n is
// less than 1.
func WithMaxDepth(n int) ValidatedOption {
	validatedPositive("WithMaxDepth", n)
	return func(c *validatedConfig) { c.maxDepth = n }
}

// WithMaxMetadataValue sets the longest metadata value that Validated
// accepts, in bytes. The default is 1024. It panics if n is less than 1.
func WithMaxMetadataValue(n int) ValidatedOption {
	validatedPositive("WithMaxMetadataValue", n)
	return func(c *validatedConfig) { c.maxMetadataValue = n }
}

// Validated returns a middleware that rejects a malformed request with an
// *[InvalidRequestError] naming the offending field, without calling the
// wrapped service. A well-formed request goes through unchanged. A request
// is well-formed when:
//
//   - ID and UserID are present, and they and Service (which may be empty)
//     are names: at most 128 bytes (see [WithMaxIDLength]) of A-Z, a-z, 0-9
//     and . _ : @ -, so that they are safe in keys, labels and logs;
//   - Metadata has at most 64 entries, each key a name as above and each
//     value at most 1024 bytes (see [WithMaxMetadataValue]) of valid UTF-8
//     without control characters;
//   - Data is empty, or a single valid JSON value of at most 64 KiB (see
//     [WithMaxDataSize]) whose arrays and objects nest at most 32 deep (see
//     [WithMaxDepth]) and whose strings, keys and values alike, are valid
//     UTF-8 without control characters (Unicode category Cc: U+0000 to
//     U+001F, U+007F to U+009F) once unescaped, so "\n" and "\u0000" are
//     rejected, and without unpaired surrogate escapes.
//
// The Field of the error is a JSON path such as "user_id",
// "metadata.trace_id" or "data.items[2].name"; an object key that is not a
// plain identifier is quoted, as in data["two words"]. When several fields
// are wrong, the first in the order above is named.
//
// Data is checked in a single pass over its bytes, without recursion and
// without decoding it, so that a deep or large document costs time in
// proportion to its size and no more stack than the depth limit allows. A
// request that passes costs no allocation.
//
// # Where it belongs
//
// Inside Instrumented and Audited, so that rejected requests are counted and
// recorded, and outside Limited and Cached, so that a malformed request
// spends no rate-limit token, cache lookup or backend call:
//
//	svc := proxy.Chain(payments,
//		proxy.Instrumented(obs),
//		proxy.Validated(),
//		proxy.Limited(lim, proxy.KeyByUser),
//		proxy.Cached(store, proxy.KeyByRequest),
//	)
func Validated(opts ...ValidatedOption) Middleware {
	cfg := validatedConfig{
		maxIDLength:      defaultMaxIDLength,
		maxDataSize:      defaultMaxDataSize,
		maxDepth:         defaultMaxDepth,
		maxMetadataValue: defaultMaxMetadataValue,
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	return func(next Service) Service {
		if next == nil {
			panic("proxy: Validated around a nil Service")
		}
		return &validated{next: next, cfg: cfg}
	}
}

type validated struct {
	next Service
	cfg  validatedConfig
}

func (s *validated) Process(ctx context.Context, req *Request) (*Response, error) {
	if err := s.cfg.check(req); err != nil {
		return nil, err
	}
	return s.next.Process(ctx, req)
}

func (c *validatedConfig) check(req *Request) *InvalidRequestError {
	if req == nil {
		return &InvalidRequestError{Field: "request", Reason: "missing"}
	}
	if err := c.checkName("id", req.ID, true); err != nil {
		return err
	}
	if err := c.checkName("user_id", req.UserID, true); err != nil {
		return err
	}
	if err := c.checkName("service", req.Service, false); err != nil {
		return err
	}
	if err := c.checkMetadata(req.Metadata); err != nil {
		return err
	}
	if len(req.Data) == 0 {
		return nil
	}
	if len(req.Data) > c.maxDataSize {
		return &InvalidRequestError{Field: "data", Reason: "larger than " + strconv.Itoa(c.maxDataSize) + " bytes"}
	}
	if err := jsoncheck.Check(req.Data, c.maxDepth); err != nil {
		return &InvalidRequestError{Field: "data" + err.Path, Reason: err.Reason}
	}
	return nil
}

// isNameByte reports whether b may appear in an id, user id, service name or
// metadata key.
func isNameByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	case b == '.', b == '_', b == ':', b == '@', b == '-':
		return true
	}
	return false
}

func (c *validatedConfig) checkName(field, v string, required bool) *InvalidRequestError {
	if v == "" {
		if required {
			return &InvalidRequestError{Field: field, Reason: "missing"}
		}
		return nil
	}
	if len(v) > c.maxIDLength {
		return &InvalidRequestError{Field: field, Reason: "longer than " + strconv.Itoa(c.maxIDLength) + " bytes"}
	}
	for i := 0; i < len(v); i++ {
		if !isNameByte(v[i]) {
			return &InvalidRequestError{
				Field:  field,
				Reason: "contains " + jsoncheck.QuoteByte(v[i]) + "; allowed are A-Z a-z 0-9 . _ : @ -",
			}
		}
	}
	return nil
}

func (c *validatedConfig) checkMetadata(md map[string]string) *InvalidRequestError {
	if len(md) > maxMetadataEntries {
		return &InvalidRequestError{Field: "metadata", Reason: "more than " + strconv.Itoa(maxMetadataEntries) + " entries"}
	}
	// Report the failing entry with the smallest key, so that the error does
	// not depend on the map's order.
	var (
		first    *InvalidRequestError
		firstKey string
	)
	for k, v := range md {
		err := c.checkMetadataEntry(k, v)
		if err != nil && (first == nil || k < firstKey) {
			first, firstKey = err, k
		}
	}
	return first
}

func (c *validatedConfig) checkMetadataEntry(k, v string) *InvalidRequestError {
	if k == "" {
		return &InvalidRequestError{Field: "metadata", Reason: "has an empty key"}
	}
	if err := c.checkName("metadata key", k, true); err != nil {
		return &InvalidRequestError{Field: "metadata" + jsoncheck.KeySegment(k), Reason: "key " + err.Reason}
	}
	if len(v) > c.maxMetadataValue {
		return &InvalidRequestError{Field: "metadata." + k, Reason: "longer than " + strconv.Itoa(c.maxMetadataValue) + " bytes"}
	}
	if reason := jsoncheck.Text(v); reason != "" {
		return &InvalidRequestError{Field: "metadata." + k, Reason: reason}
	}
	return nil
}

var _ Service = (*validated)(nil)
