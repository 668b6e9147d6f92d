// Package tracing adds OpenTelemetry tracing to a proxy stack.
//
// [Traced] is a [proxy.Middleware] that starts one span per call, named after
// the service, and records on it the outcome, the instance that answered,
// whether the answer came from a cache, and the error. It uses the
// OpenTelemetry API only: the caller passes a [trace.TracerProvider] (by
// default the global one), and chooses the SDK and exporter, if any, in its
// own main package. With no SDK installed, spans cost next to nothing.
//
// # Where it belongs
//
// Outermost, around everything, so that the span covers the whole call,
// including the time spent waiting for a rate limit or retrying, and so that
// the context the inner layers see carries the span: a remote instance then
// propagates it (W3C traceparent) to the process it calls, and the inner
// layers can add events to it with [RecordRetry] and [RecordEvent].
//
// # Why a package of its own
//
// The root package proxy has no OpenTelemetry dependency; a program that
// does not trace compiles none of it. This package is an adapter, and so it
// imports the root package, as an adapter must.
//
// # Concurrency
//
// Everything here is safe for concurrent use and starts no goroutines.
package tracing
