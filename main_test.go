package proxy_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// wrappers' background work (health checks, audit flushing) must stop with
// Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
