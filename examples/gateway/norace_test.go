//go:build !race

package main

// raceEnabled reports whether the tests run under the race detector, so
// that the binary they build is built the same way (and from the same
// cached packages).
const raceEnabled = false
