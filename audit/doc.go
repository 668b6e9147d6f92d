// Package audit records who called what, when, and how it ended, in a form
// an auditor can trust.
//
// An [Event] describes one call: the request and user ids, the
// authenticated principal and role, the service and instance, the outcome
// and error code, the duration, the trace id, and the request-data fields a
// [Redactor] let through. A [Sink] records events. This package has two:
//
//   - [FileSink] ([OpenFile]) appends events to a JSON-lines file as a hash
//     chain. Every record carries a sequence number and the SHA-256 hash of
//     the record before it, so that [Verify] finds the first record that
//     was changed, removed, inserted or reordered ([ErrTampered]), and tells
//     a log that a crash cut short ([ErrTruncated]) from a tampered one.
//   - [SlogSink] ([NewSlog]) hands events to a [log/slog] handler, for
//     programs whose logs already go somewhere safe.
//
// # When to use it
//
// Use it when a record of every call must exist, including the calls that
// were refused: the root package's proxy.Audited wraps a service, builds one
// Event per call from the request and the result, and writes it to a Sink,
// failing the call or counting the failure when the sink cannot record it.
// The package knows nothing of proxy.Request: any program can build Events
// and write them to a sink.
//
// # What a record holds
//
// A record holds what its producer put in the Event, and nothing is copied
// implicitly: proxy.Audited copies the ids, the principal, role and trace id
// metadata, and only the data fields it is told to keep, through a
// [Redactor] that replaces secrets nested in them with [Redacted]. Other
// metadata, such as authorization tokens, and error messages, which may
// quote the request, never reach a record.
//
// # Tamper evidence
//
// A hash chain shows changes made after the fact by anyone who does not
// rewrite the whole chain from the changed record to the end. Against an
// attacker who can, and against records cut from the end of the log,
// store the log's [Head] (sequence number and hash of the last record)
// where the log's writer cannot change it, and compare it with what
// [Verify] returns. A log is one file written by one FileSink at a time;
// [OpenFile] continues the chain of an existing file.
//
// # Concurrency and time
//
// Sinks are safe for concurrent use. A FileSink writes records in the order
// of their sequence numbers whatever the number of writers, buffers them,
// and syncs them to stable storage on [FileSink.Sync], on Close, and every
// flush interval ([WithFlushInterval], default [DefaultFlushInterval]) from a
// goroutine that its first Write starts and Close stops: constructors start
// no goroutines. The package reads the clock only for that interval; event
// times come from the producer (proxy.Audited takes an injected clock).
// Write honours its context: it gives up waiting for the sink when ctx is
// done.
package audit
