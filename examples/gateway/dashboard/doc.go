// Package dashboard is the example gateway's live dashboard: one page, its
// script and its style sheet, plain HTML, CSS and JavaScript embedded in
// the binary, with no build step and no library.
//
// The page reads the gateway's /ws event stream and shows, per service,
// the request rate, the error rate, the latency (p50 and p99), the cache
// hit ratio and the rate-limited calls, the breaker's state and each
// instance's health, with a chart of the last five minutes of request rate
// and latency, and the latest events. It fits a phone's screen as well as
// a wide one.
//
// # How it composes
//
// [Handler] serves the files; the gateway mounts it at /dashboard/ and
// provides the rest of what the page uses, relative to the page: ../ws,
// the stream; and ./config.json, which says whether this client may open
// the stream without a token (the gateway's localhost demo) and how often
// the stream sends stats, and, asked with a token, answers 401 or 403 as
// the stream would, so that the page can say why it refused. The package
// knows nothing else of the gateway.
//
// # Authentication
//
// The files hold no data and are served to anyone; the stream
// authenticates. Unless the gateway's demo lets it in, the page asks for a
// bearer token, keeps it in the tab's sessionStorage (gone when the tab
// closes) and sends it as the "bearer.<token>" WebSocket subprotocol,
// since browsers cannot set headers on a WebSocket. Every value from the
// stream reaches the page as text, never as HTML, and a Content Security
// Policy keeps the page to its own files and its own origin.
//
// # Concurrency
//
// The handler is safe for concurrent use. The page reconnects by itself,
// with a growing delay, when the stream drops.
package dashboard
