//go:build !race

package stats_test

import (
	"testing"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/stats"
)

// TestInstrumentedAllocatesNothing guards the zero-allocation hot path once
// a service has been seen. The race detector allocates on its own, so this
// test runs only without it.
func TestInstrumentedAllocatesNothing(t *testing.T) {
	svc := proxy.Chain(benchBackend, proxy.Instrumented(stats.New()))
	ctx := t.Context()
	_, _ = svc.Process(ctx, benchReq) // first sight of the service creates its counters
	if n := testing.AllocsPerRun(100, func() { _, _ = svc.Process(ctx, benchReq) }); n != 0 {
		t.Errorf("Process allocates %v times per call, want 0", n)
	}
}
