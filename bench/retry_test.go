package bench_test

import (
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	"github.com/go-kit/kit/sd/lb"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/retry"
)

// BenchmarkRetry measures a retry layer around a call that succeeds the
// first time. go-kit's only retry is lb.Retry, which takes a balancer: it
// is given one endpoint.
func BenchmarkRetry(b *testing.B) {
	run(b, "ours", viaService(proxy.Chain(backend, proxy.Retrying(retry.New()))))
	run(b, "failsafe", viaFailsafe(failsafe.With[*proxy.Response](retrypolicy.NewWithDefaults[*proxy.Response]())))
	one := lb.NewRoundRobin(sd.FixedEndpointer([]endpoint.Endpoint{kitBackend}))
	run(b, "gokit", viaEndpoint(lb.Retry(retry.DefaultMaxAttempts, time.Second, one)))
}
