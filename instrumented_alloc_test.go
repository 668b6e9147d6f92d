//go:build !race

package proxy_test

import (
	"testing"

	"github.com/proxykit/proxy"
)

// TestInstrumentedAllocatesNothing guards the zero-allocation hot path. The
// race detector allocates on its own, so this test runs only without it.
func TestInstrumentedAllocatesNothing(t *testing.T) {
	svc := proxy.Chain(instrumentedStatic, proxy.Instrumented(proxy.MultiObserver(instrumentedNop{}, instrumentedNop{})))
	ctx := t.Context()
	if n := testing.AllocsPerRun(100, func() { _, _ = svc.Process(ctx, instrumentedReq) }); n != 0 {
		t.Errorf("Process allocates %v times per call, want 0", n)
	}
}
