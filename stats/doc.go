// Package stats keeps a proxy's call statistics in memory, for a program
// that serves them itself (as JSON, on a dashboard, on a live stream) rather
// than through Prometheus.
//
// # When to use it
//
// A [Recorder] implements [proxy.Observer]: wrap the stack in
// [proxy.Instrumented] and read [Recorder.Snapshot] whenever the statistics
// are wanted. Per service, a snapshot holds counts since the Recorder was
// created (calls by [proxy.Outcome], cache hits and misses, calls in flight)
// and, over a recent window (one minute by default), the call rate and the
// mean, median, 90th and 99th percentile and maximum latency. Use the
// metrics package instead, or as well through [proxy.MultiObserver], when
// Prometheus scrapes the program.
//
//	rec := stats.New()
//	svc := proxy.Chain(payments, proxy.Instrumented(rec))
//	// ...
//	json.NewEncoder(w).Encode(rec.Snapshot())
//
// # How it composes
//
// Like the metrics package, this one is an adapter that implements an
// interface of the root package, so it imports the root for
// [proxy.Observer] and [proxy.Outcome]; the root never imports it. It
// depends on nothing outside the standard library.
//
// # Accuracy and memory
//
// The window is cut into 12 slots that each hold a call count, the sum and
// maximum of the durations, and a log-linear histogram of them (16 buckets
// per power of two, exact below 16ns). The window slides one slot at a
// time. Quantiles are the middle of the histogram bucket that holds the
// exact nearest-rank sample, so they are within [QuantileError] (3.125%) of
// it; durations of about 66.6s and more all share the last bucket, whose
// quantile is reported as the window's maximum. Count, mean, maximum and rate
// are exact for the calls in the window. A service costs about 25 KiB, plus
// about 2.2 KiB per processor (up to 16), whatever the number of calls, and
// at most [WithMaxServices] services are kept apart.
//
// # Concurrency and time
//
// A Recorder is safe for concurrent use. Counting a call takes atomic adds
// and one short lock, and allocates nothing once the service has been seen.
// The counts are striped: calls that end on different processors count in
// different stripes, with locks of their own, so that counting scales with
// the processors instead of contending on one service's counters; a
// snapshot adds the stripes up. A Recorder starts no goroutine: the window slides lazily as
// calls end and snapshots are taken. Calls are placed in the window by the
// times in their [proxy.Observation]; the Recorder reads its own clock
// ([WithClock]) only when it is created and for a snapshot, so give it the
// same clock as Instrumented.
package stats
