// Package breaker provides circuit breakers: a [Breaker] lets calls to a
// service through while they succeed, stops them once too many fail, so that
// a failing service is not buried under load it cannot serve and callers
// fail fast instead of waiting on it, and then lets a few probe calls
// through to find out whether the service has recovered.
//
// It is built on github.com/sony/gobreaker/v2 and adds what a proxy needs
// around it: options with documented defaults, a classifier of errors that
// do not count, state-change events delivered outside every lock, correct
// accounting of calls that panic or exit their goroutine, and a closed
// success path that neither allocates nor reads the wall clock.
//
// # When to use it
//
// Put a breaker in front of a dependency that can fail as a whole (a remote
// service, a database) and whose failures are better answered at once than
// waited for. A breaker knows nothing of requests: it runs functions and
// classifies their errors. The root package's proxy.Breaker turns it into a
// middleware for a proxy.Service, and decides there which errors are the
// caller's own; one Breaker may also guard any other kind of call through
// [Breaker.Do] or [Execute].
//
// # The cycle
//
// A breaker starts [Closed]. It trips to [Open] when a trip rule is met:
// [WithConsecutiveFailures] (n failures in a row; 5 by default) or
// [WithFailureRatio] (a share of failed calls, once enough calls have
// finished), both over a rolling counting window ([WithInterval]; one
// minute by default). An open breaker rejects every call with [ErrOpen] for
// its cool-down ([WithCooldown]; one minute by default), then turns
// [HalfOpen]: it lets [WithHalfOpenProbes] probes through (1 by default) and
// rejects the others with [ErrTooManyRequests]. When that many probes in a
// row succeed, it closes; when one fails, it opens again for another
// cool-down.
//
// A call's nil error is a success and any other error a failure, except the
// errors that are excluded: they count neither way. By default those are the
// errors that match [context.Canceled], since a caller giving up says
// nothing about the service; [WithExcluded] replaces that classifier, and
// [Exclude] marks one error as excluded whatever the classifier says. A panic
// is a failure, and is raised again. Invalid settings are programming errors:
// the options panic with a "breaker:" prefix.
//
// # Events
//
// [Breaker.Subscribe] registers a function that is told of every change of
// state, as an [Event]. gobreaker reports changes while it holds its lock;
// the breaker queues them there and delivers them after the lock is
// released, in order and one at a time, on the goroutine of the call that
// made the change (or of a call that is already delivering). No goroutine is
// started for it, so a subscriber runs in some caller's time and must be
// quick.
//
// # The closed state's fast path
//
// gobreaker reads the wall clock twice and takes its mutex twice for every
// call. Under the consecutive-failures rule (the default), a success changes
// nothing in its decisions while no failure is counted, so a closed Breaker
// with no failure pending runs the call without telling gobreaker, and
// counts the success itself: about 35 ns instead of 130, and no lock shared
// by the callers. Failures, panics, excluded errors, the first success after
// a failure (and a fast success that ends after a failure began) and every
// call while the breaker is open or half-open go through gobreaker, so the
// trip decisions are gobreaker's, made on the same order of completions it
// would have seen. A call that began before a change of state, or in a step
// of the counting window that has left it by the time the call ends, counts
// neither way, as in gobreaker. One difference remains: gobreaker counts a
// call in the window's step in which it began, and the fast path can only
// tell gobreaker of a call once it has ended, so a fast-path call that
// fails (or succeeds after a failure began) counts in the step in which it
// ended. That matters only for a call that spans a step boundary (a tenth
// of the window apart), and only when its step is the oldest in the
// window: the call then ages out one step later than in gobreaker.
// The failure-ratio rule needs every success counted, so a Breaker with
// [WithFailureRatio] sends every call to gobreaker. An open Breaker
// likewise rejects calls without asking gobreaker until its cool-down has
// ended (a monotonic clock read, against gobreaker's lock and wall-clock
// read); the first call after that goes to gobreaker, which turns it
// half-open.
//
// # Concurrency and time
//
// A Breaker is safe for concurrent use, and starts no goroutine: time-based
// changes (the end of a cool-down, calls ageing out of the counting window)
// are worked out on the next call. gobreaker reads the wall clock itself, so
// a Breaker follows the wall clock too and has no WithClock option; tests
// that need time to pass run in a [testing/synctest] bubble, where the wall
// clock is virtual.
package breaker
