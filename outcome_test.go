package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/proxykit/proxy"
)

func TestOutcomeOf(t *testing.T) {
	tests := []struct {
		err  error
		want proxy.Outcome
	}{
		{nil, proxy.OutcomeOK},
		{fmt.Errorf("x: %w", &proxy.InvalidRequestError{Field: "id", Reason: "missing"}), proxy.OutcomeInvalid},
		{proxy.ErrUnauthenticated, proxy.OutcomeUnauthenticated},
		{proxy.ErrForbidden, proxy.OutcomeForbidden},
		{&proxy.RateLimitError{Key: "k"}, proxy.OutcomeRateLimited},
		{fmt.Errorf("%w: %w", proxy.ErrCircuitOpen, errors.New("gobreaker: open")), proxy.OutcomeCircuitOpen},
		{fmt.Errorf("%w: %w", proxy.ErrOverloaded, errors.New("bulkhead: full")), proxy.OutcomeOverloaded},
		{proxy.ErrNoHealthyInstance, proxy.OutcomeNoHealthyInstance},
		{fmt.Errorf("call: %w", context.DeadlineExceeded), proxy.OutcomeTimeout},
		{context.Canceled, proxy.OutcomeCanceled},
		{errors.New("card declined"), proxy.OutcomeError},
		{fmt.Errorf("%w: %w", proxy.ErrForbidden, proxy.ErrRateLimited), proxy.OutcomeForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.want.String(), func(t *testing.T) {
			if got := proxy.OutcomeOf(tt.err); got != tt.want {
				t.Errorf("OutcomeOf(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestOutcomeNamesAreDistinct(t *testing.T) {
	seen := map[string]proxy.Outcome{}
	for _, o := range proxy.Outcomes() {
		name := o.String()
		if name == "unknown" || name == "" {
			t.Errorf("Outcome(%d).String() = %q", o, name)
		}
		if prev, dup := seen[name]; dup {
			t.Errorf("Outcome(%d) and Outcome(%d) are both %q", prev, o, name)
		}
		seen[name] = o
	}
	if got := proxy.Outcome(200).String(); got != "unknown" {
		t.Errorf("Outcome(200).String() = %q, want unknown", got)
	}
}
