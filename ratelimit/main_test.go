package ratelimit_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: a
// Limiter starts none, and Limit's waits leave none behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
