//go:build !race

package stripe_test

const raceEnabled = false
