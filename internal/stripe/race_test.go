//go:build race

package stripe_test

// raceEnabled reports whether the race detector is on: sync.Pool then
// drops a share of what it is given, on purpose.
const raceEnabled = true
