//go:build !race

package proxy_test

import (
	"testing"

	"github.com/proxykit/proxy"
)

// TestValidatedAllocatesNothing guards the zero-allocation path of a
// well-formed request.
func TestValidatedAllocatesNothing(t *testing.T) {
	svc := proxy.Chain(instrumentedStatic, proxy.Validated())
	req := validatedReq(nil)
	ctx := t.Context()
	if n := testing.AllocsPerRun(100, func() { _, _ = svc.Process(ctx, req) }); n != 0 {
		t.Errorf("Process allocates %v times per call, want 0", n)
	}
}
