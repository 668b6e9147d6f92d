package proxy_test

import (
	"fmt"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/stats"
)

// instrumentedPrinter is an Observer that prints what it is told.
type instrumentedPrinter struct{}

func (instrumentedPrinter) Begin(service string) { fmt.Println("begin", service) }

func (instrumentedPrinter) End(o proxy.Observation) {
	fmt.Println("end", o.Service, o.Outcome, "cached:", o.Cached)
}

func ExampleInstrumented() {
	svc := proxy.Chain(echo, proxy.Instrumented(instrumentedPrinter{}))
	resp, err := svc.Process(ctx, aliceReq)
	fmt.Println(resp.RequestID, err)
	// Output:
	// begin echo
	// end echo ok cached: false
	// req_1 <nil>
}

func ExampleMultiObserver() {
	rec := stats.New() // in-memory statistics, next to any other observer
	svc := proxy.Chain(echo, proxy.Instrumented(proxy.MultiObserver(instrumentedPrinter{}, rec)))
	for range 3 {
		_, _ = svc.Process(ctx, aliceReq)
	}
	echoStats, _ := rec.Service("echo")
	fmt.Println("requests:", echoStats.Requests, "ok:", echoStats.Outcomes["ok"])
	// Output:
	// begin echo
	// end echo ok cached: false
	// begin echo
	// end echo ok cached: false
	// begin echo
	// end echo ok cached: false
	// requests: 3 ok: 3
}
