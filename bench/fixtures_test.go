package bench_test

import (
	"context"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/proxykit/proxy"
)

// benchUsers is how many distinct users the requests are spread over: the
// rate limiter keeps a bucket per user, the cache an entry per user.
const benchUsers = 1000

// benchData is the small request payload that cache keys are made from.
const benchData = `{"amount":100.5,"currency":"EUR","items":[{"sku":"A-1","qty":2}]}`

var (
	benchCtx = context.Background()

	// benchResp is the preallocated answer of the backend. Its Instance is
	// set, so that Balanced has nothing to write into it.
	benchResp = &proxy.Response{
		RequestID: "req",
		Service:   "payment",
		Instance:  "payment-1",
		Data:      json.RawMessage(`{"status":"ok"}`),
	}

	// benchReqs are the requests the benchmarks cycle through, one per
	// user.
	benchReqs = func() []*proxy.Request {
		reqs := make([]*proxy.Request, benchUsers)
		for i := range reqs {
			reqs[i] = &proxy.Request{
				ID:      "req-" + strconv.Itoa(i),
				UserID:  "user-" + strconv.Itoa(i),
				Service: "payment",
				Data:    json.RawMessage(benchData),
			}
		}
		return reqs
	}()

	// backend is the trivial service every benchmark calls in the end.
	backend = proxy.ServiceFunc(func(context.Context, *proxy.Request) (*proxy.Response, error) {
		return benchResp, nil
	})
)

// A benchCall makes one call through the layers under test and returns
// whether it succeeded.
type benchCall func(ctx context.Context, req *proxy.Request) bool

// viaService is the benchCall of a proxy.Service.
func viaService(s proxy.Service) benchCall {
	return func(ctx context.Context, req *proxy.Request) bool {
		resp, err := s.Process(ctx, req)
		return err == nil && resp != nil
	}
}

// run runs call as the sub-benchmarks impl=<impl>/run=serial and
// impl=<impl>/run=parallel, over the requests of every user in turn. It
// fails the benchmark if a call does not succeed.
func run(b *testing.B, impl string, call benchCall) {
	b.Run("impl="+impl, func(b *testing.B) {
		runModes(b, call)
	})
}

func runModes(b *testing.B, call benchCall) {
	b.Run("run=serial", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b, cpuTime())
		i := 0
		for b.Loop() {
			if !call(benchCtx, benchReqs[i]) {
				b.Fatal("call failed")
			}
			if i++; i == benchUsers {
				i = 0
			}
		}
	})
	b.Run("run=parallel", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b, cpuTime())
		var seq atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(seq.Add(1)*7919) % benchUsers // start the goroutines on different users
			for pb.Next() {
				if !call(benchCtx, benchReqs[i]) {
					b.Error("call failed")
					return
				}
				if i++; i == benchUsers {
					i = 0
				}
			}
		})
	})
}

// cpuTime returns the CPU time the process has used, in user and system
// mode, on all its threads.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time used since start per call, as cpu-ns/op.
// Unlike ns/op, which is wall time, it does not grow when other processes
// take the machine's cores: on a shared machine it tells contention (more
// CPU per call in parallel) from a lack of cores (more wall time only). A
// benchmark running in parallel on 2 cores is no slower per call than
// serially, in wall time, when its parallel cpu-ns/op is at most twice its
// serial one.
func reportCPU(b *testing.B, start time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
}

// warm makes one call for every user, so that per-user state (rate-limit
// buckets, cache entries) exists before the measurement.
func warm(b *testing.B, call benchCall) {
	b.Helper()
	for _, req := range benchReqs {
		if !call(benchCtx, req) {
			b.Fatal("warm-up call failed")
		}
	}
}

// BenchmarkFloor is the direct call with no layer: the floor every other
// figure is compared with.
func BenchmarkFloor(b *testing.B) {
	run(b, "direct", viaService(backend))
}
