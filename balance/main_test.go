package balance_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a health-check goroutine outlives
// them: Close must stop every one.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
