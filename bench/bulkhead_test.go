package bench_test

import (
	"testing"

	"github.com/failsafe-go/failsafe-go"
	fsbulkhead "github.com/failsafe-go/failsafe-go/bulkhead"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/bulkhead"
)

// BenchmarkBulkhead measures a concurrency limit that is never reached. Ours
// keeps a limit per service (one key here); failsafe-go's is one for all.
func BenchmarkBulkhead(b *testing.B) {
	run(b, "ours", viaService(proxy.Chain(backend, proxy.Bulkhead(bulkhead.New(1000), nil))))
	run(b, "failsafe", viaFailsafe(failsafe.With[*proxy.Response](fsbulkhead.New[*proxy.Response](1000))))
}
