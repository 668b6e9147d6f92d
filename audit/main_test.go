package audit_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: a
// FileSink's flusher must stop with Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
