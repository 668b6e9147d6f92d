// Package metrics exports a proxy's calls as Prometheus metrics, on
// github.com/prometheus/client_golang.
//
// # When to use it
//
// Use it when the program that embeds the proxy is scraped by Prometheus. A
// [Metrics] implements [proxy.Observer]: wrap the stack in
// [proxy.Instrumented] and every call is counted by service and outcome and
// timed. Report the other layers' events to it as well (breaker state
// changes, retries, instance health), and they show up next to the calls.
// For statistics served as JSON, without Prometheus, use the stats package;
// [proxy.MultiObserver] feeds both from one Instrumented.
//
//	reg := prometheus.NewRegistry()
//	m := metrics.New(reg)
//	svc := proxy.Chain(payments,
//		proxy.Instrumented(m),
//		proxy.Limited(lim, proxy.KeyByUser),
//	)
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// # How it composes
//
// This package is an adapter, not a mechanism: it implements an interface
// of the root package, so it imports the root for [proxy.Observer],
// [proxy.Observation] and [proxy.Outcome], while the root never imports it.
// Prometheus stays out of the root package, and a program that does not want
// it does not compile it. It imports neither the breaker nor the balance
// package: their events come in as plain strings, booleans and
// [BreakerState] values, and the gateway does the translation.
//
// # Registration and labels
//
// [New] registers on the [prometheus.Registerer] the caller passes, never on
// the global registry. Labels are bounded: outcome is the closed set
// [proxy.Outcomes]; service is the request's service, capped at
// [WithMaxServices] distinct values beyond which calls are counted under
// [OtherService]; instance comes from the configuration. No label holds a
// user id or anything else taken from a request's content.
//
// # Concurrency and cost
//
// A Metrics is safe for concurrent use. The series of a service are resolved
// once, on its first call, and kept in a copy-on-write map, so recording a
// call takes no lock and allocates nothing. The counts of the calls are
// striped: calls running on different processors add to different cache
// lines, so that recording scales with the number of processors instead of
// contending on shared counters, and a scrape adds the stripes up. Each
// service's series take about 1.2 KiB per stripe with the default buckets,
// with one stripe per processor (GOMAXPROCS when New runs) up to 16.
// Durations come from the [proxy.Observation]: this package reads the clock
// only to stamp a new series' creation time, as client_golang does.
package metrics
