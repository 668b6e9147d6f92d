//go:build !race

package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/metrics"
)

// TestInstrumentedAllocatesNothing guards the zero-allocation hot path once
// a service has been seen. The race detector allocates on its own, so this
// test runs only without it.
func TestInstrumentedAllocatesNothing(t *testing.T) {
	svc := proxy.Chain(benchBackend, proxy.Instrumented(metrics.New(prometheus.NewRegistry())))
	ctx := t.Context()
	_, _ = svc.Process(ctx, benchReq) // first sight of the service creates its series
	if n := testing.AllocsPerRun(100, func() { _, _ = svc.Process(ctx, benchReq) }); n != 0 {
		t.Errorf("Process allocates %v times per call, want 0", n)
	}
}
