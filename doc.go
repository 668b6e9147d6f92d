// Package proxy is a library of composable proxy decorators: small layers
// that add caching, rate limiting, circuit breaking, load balancing with
// health checks, retries, timeouts, audit logging and metrics around a
// [Service] a caller already has.
//
// # The one idea
//
// A [Service] processes a [Request] and returns a [Response]. A [Middleware]
// wraps a Service in another Service that adds one behaviour. [Chain] stacks
// middleware around a service, the first one outermost, the way
// func(http.Handler) http.Handler wrappers stack around a handler:
//
//	svc := proxy.Chain(payments, // mw[0] is the outermost layer
//		proxy.Limited(lim, proxy.KeyByUser),
//		proxy.Retrying(policy),
//		proxy.Breaker(br),
//		proxy.Timeout(2*time.Second),
//	)
//	resp, err := svc.Process(ctx, req)
//
// The caller cannot tell the stack from the real service: errors that the
// service returns pass through unchanged, and errors a layer adds are values
// to branch on with [errors.Is] and [errors.As] ([ErrRateLimited],
// [ErrCircuitOpen], [ErrNoHealthyInstance], [ErrInvalidRequest], ...).
//
// # The order of the layers
//
// Outermost first: (tracing.Traced,) Instrumented, Audited, Validated,
// Limited, Bulkhead, Cached, Retrying, Breaker, Timeout, Balanced.
//
//   - Traced, from the tracing package, goes outside everything when used,
//     so that its span covers the whole call and every layer inside can mark
//     it.
//   - Instrumented and Audited see every call, including the ones the inner
//     layers reject, so they go outside everything else.
//   - Validated rejects malformed requests before they spend a token of the
//     rate limit or a cache lookup.
//   - Limited comes before Cached so that a cache hit is still a call the
//     user made; put Cached first if hits should be free.
//   - Bulkhead comes after Limited: the rate limit bounds how often calls
//     start, the bulkhead how many run at once, so a slow backend cannot
//     pile up goroutines; a shed call spends no retry budget.
//   - Cached comes before Retrying so that a hit costs no retry budget.
//   - Retrying wraps Breaker so that a rejection by an open breaker is not
//     retried in a tight loop, and each retry is a fresh breaker decision.
//   - Timeout bounds each attempt, not the whole call: a retry gets a fresh
//     deadline. Put a second Timeout outside Retrying to bound the total.
//   - Balanced is innermost, so that every retry picks an instance afresh and
//     goes to another one when the first has failed.
//
// # Mechanisms
//
// The sub-packages cache, ratelimit, breaker, balance, retry and audit hold
// the mechanisms; each is useful on its own and knows nothing of [Request].
// This package turns them into Middleware by choosing keys from the request
// ([KeyFunc]). Adapters to heavy dependencies (Prometheus) live in their own
// packages, so a program that uses only Breaker compiles only gobreaker.
package proxy
