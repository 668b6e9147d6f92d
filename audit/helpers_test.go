package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/proxykit/proxy/audit"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// testEvent returns the i-th event of a test log.
func testEvent(i int) audit.Event {
	return audit.Event{
		Time:      t0.Add(time.Duration(i) * time.Millisecond),
		RequestID: fmt.Sprintf("req_%d", i),
		UserID:    "alice",
		Service:   "payment",
		Outcome:   "ok",
		Duration:  1500 * time.Microsecond,
	}
}

// openLog opens a new log in a temporary directory and closes it when the
// test ends (unless the test closed it already).
func openLog(t testing.TB, opts ...audit.FileOption) (*audit.FileSink, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	s, err := audit.OpenFile(path, opts...)
	if err != nil {
		t.Fatalf("OpenFile(%q) = %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

// writeLog writes events 1..n to a new log, closes it and returns its path.
func writeLog(t testing.TB, n int) string {
	t.Helper()
	s, path := openLog(t)
	for i := 1; i <= n; i++ {
		if err := s.Write(context.Background(), testEvent(i)); err != nil {
			t.Fatalf("Write(event %d) = %v", i, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	return path
}

// A logRecord is a record of a log file as its documented format has it.
type logRecord struct {
	Seq   uint64      `json:"seq"`
	Prev  string      `json:"prev"`
	Event audit.Event `json:"event"`
	Hash  string      `json:"hash"`
}

// readRecords decodes every complete line of data.
func readRecords(t testing.TB, data []byte) []logRecord {
	t.Helper()
	var recs []logRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r logRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %d: %v", len(recs)+1, err)
		}
		recs = append(recs, r)
	}
	return recs
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func verifyFile(t testing.TB, path string) (audit.Head, error) {
	t.Helper()
	return audit.Verify(bytes.NewReader(readFile(t, path)))
}
