package bench_test

import (
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/timeout"

	"github.com/proxykit/proxy"
)

// BenchmarkTimeout measures a per-call timeout around a call that returns
// in time; the service sees the deadline.
func BenchmarkTimeout(b *testing.B) {
	run(b, "ours", viaService(proxy.Chain(backend, proxy.Timeout(time.Second))))
	run(b, "failsafe", viaFailsafeExec(failsafe.With[*proxy.Response](timeout.New[*proxy.Response](time.Second))))
}
