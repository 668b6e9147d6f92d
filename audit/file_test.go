package audit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proxykit/proxy/audit"
)

// TestFileSinkFormat checks the documented line format: each line's hash is
// the SHA-256 of its bytes before `,"hash"`, and the next line's prev.
func TestFileSinkFormat(t *testing.T) {
	path := writeLog(t, 3)
	lines := strings.SplitAfter(string(readFile(t, path)), "\n")
	if got := len(lines); got != 4 || lines[3] != "" {
		t.Fatalf("log has lines %q, want 3 lines each ending in a newline", lines)
	}
	prev := audit.Genesis
	for i, line := range lines[:3] {
		seq := i + 1
		wantPrefix := `{"seq":` + strconv.Itoa(seq) + `,"prev":"` + prev + `","event":{"time":"2030-01-01T00:00:00.00` + strconv.Itoa(seq) + `Z","request_id":"req_` + strconv.Itoa(seq) + `"`
		if !strings.HasPrefix(line, wantPrefix) {
			t.Fatalf("line %d = %s, want prefix %s", seq, line, wantPrefix)
		}
		cut := strings.LastIndex(line, `,"hash":"`)
		sum := sha256.Sum256([]byte(line[:cut]))
		hash := hex.EncodeToString(sum[:])
		if want := `,"hash":"` + hash + "\"}\n"; line[cut:] != want {
			t.Fatalf("line %d ends %s, want %s", seq, line[cut:], want)
		}
		prev = hash
	}
	head, err := verifyFile(t, path)
	if err != nil || head != (audit.Head{Seq: 3, Hash: prev}) {
		t.Fatalf("Verify() = %+v, %v, want {3 %s}, <nil>", head, err, prev)
	}
}

func TestEventJSON(t *testing.T) {
	e := audit.Event{
		Time: t0, RequestID: "req_1", UserID: "alice", Principal: "alice@example.com", Role: "admin",
		Service: "payment", Instance: "payment-2", Cached: true, Outcome: "error", ErrorCode: "card_declined",
		Duration: 1500 * time.Microsecond, TraceID: "4bf92f35", Fields: map[string]any{"b": 2, "a": "x"},
	}
	s, path := openLog(t)
	if err := s.Write(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	want := `"event":{"time":"2030-01-01T00:00:00Z","request_id":"req_1","user_id":"alice",` +
		`"principal":"alice@example.com","role":"admin","service":"payment","instance":"payment-2",` +
		`"cached":true,"outcome":"error","error_code":"card_declined","duration_ns":1500000,` +
		`"trace_id":"4bf92f35","fields":{"a":"x","b":2}},`
	if got := string(readFile(t, path)); !strings.Contains(got, want) {
		t.Errorf("record = %s, want it to contain %s", got, want)
	}
	minimal := `"event":{"time":"2030-01-01T00:00:00Z","request_id":"","service":"","outcome":"","duration_ns":0},`
	s2, path2 := openLog(t)
	if err := s2.Write(t.Context(), audit.Event{Time: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if got := string(readFile(t, path2)); !strings.Contains(got, minimal) {
		t.Errorf("record of a zero event = %s, want it to contain %s", got, minimal)
	}
}

// TestOpenFileContinuesChain reopens a log twice and checks that the
// records appended later continue its chain.
func TestOpenFileContinuesChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	last := audit.Head{Hash: audit.Genesis}
	for round := range 3 {
		s, err := audit.OpenFile(path)
		if err != nil {
			t.Fatalf("OpenFile(round %d) = %v", round, err)
		}
		if got := s.Head(); got != last {
			t.Fatalf("Head() after OpenFile(round %d) = %+v, want %+v", round, got, last)
		}
		for i := range 4 {
			if err := s.Write(t.Context(), testEvent(round*4+i+1)); err != nil {
				t.Fatal(err)
			}
		}
		last = s.Head()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	head, err := verifyFile(t, path)
	if err != nil || head != last || head.Seq != 12 {
		t.Fatalf("Verify() = %+v, %v, want %+v (seq 12), <nil>", head, err, last)
	}
}

// TestOpenFileTornTail cuts a log in the middle of its last record, as a
// crash does, and checks that OpenFile reports it, that Repair removes it
// and that the repaired log can be continued.
func TestOpenFileTornTail(t *testing.T) {
	path := writeLog(t, 5)
	data := readFile(t, path)
	lastStart := bytes.LastIndexByte(data[:len(data)-1], '\n') + 1
	cut := lastStart + 40
	if err := os.WriteFile(path, data[:cut], 0o600); err != nil {
		t.Fatal(err)
	}

	_, err := audit.OpenFile(path)
	var terr *audit.TruncatedError
	if !errors.As(err, &terr) || errors.Is(err, audit.ErrTampered) {
		t.Fatalf("OpenFile(torn log) = %v, want a *TruncatedError only", err)
	}
	if want := (audit.TruncatedError{Seq: 5, Offset: int64(lastStart), Size: 40}); *terr != want {
		t.Errorf("OpenFile(torn log) error = %+v, want %+v", *terr, want)
	}

	removed, err := audit.Repair(path)
	if err != nil || string(removed) != string(data[lastStart:cut]) {
		t.Fatalf("Repair() = %q, %v, want %q, <nil>", removed, err, data[lastStart:cut])
	}
	if removed, err := audit.Repair(path); removed != nil || err != nil {
		t.Fatalf("Repair(repaired log) = %q, %v, want nil, <nil>", removed, err)
	}
	s, err := audit.OpenFile(path)
	if err != nil {
		t.Fatalf("OpenFile(repaired log) = %v", err)
	}
	if err := s.Write(t.Context(), testEvent(99)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if head, err := verifyFile(t, path); err != nil || head.Seq != 5 {
		t.Fatalf("Verify(continued log) = %+v, %v, want seq 5, <nil>", head, err)
	}
}

func TestOpenFileTampered(t *testing.T) {
	tests := []struct {
		name   string
		change func(data []byte) []byte
	}{
		{"garbage after last record", func(d []byte) []byte { return append(d, "garbage"...) }},
		{"last record altered", func(d []byte) []byte { d[len(d)-100] ^= 1; return d }},
		{"empty last line", func(d []byte) []byte { return append(d, '\n') }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeLog(t, 3)
			changed := tt.change(readFile(t, path))
			if err := os.WriteFile(path, changed, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := audit.OpenFile(path); !errors.Is(err, audit.ErrTampered) {
				t.Errorf("OpenFile() = %v, want ErrTampered", err)
			}
			if _, err := audit.Repair(path); !errors.Is(err, audit.ErrTampered) {
				t.Errorf("Repair() = %v, want ErrTampered", err)
			}
			if got := readFile(t, path); !bytes.Equal(got, changed) {
				t.Errorf("Repair() changed a tampered log")
			}
		})
	}
}

// TestFileSinkLongLastLine opens a log whose last record is longer than the
// window OpenFile first reads backwards.
func TestFileSinkLongLastLine(t *testing.T) {
	s, path := openLog(t)
	e := testEvent(1)
	e.Fields = map[string]any{"note": strings.Repeat("x", 20000)}
	for i := range 2 {
		if err := s.Write(t.Context(), e); err != nil {
			t.Fatalf("Write(%d) = %v", i, err)
		}
	}
	want := s.Head()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := audit.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := s2.Head(); got != want {
		t.Errorf("Head() after OpenFile = %+v, want %+v", got, want)
	}
}

// TestFileSinkFlushInterval checks, in a synctest bubble, that a record
// reaches the file within one flush interval without Sync or Close.
func TestFileSinkFlushInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.log")
		s, err := audit.OpenFile(path, audit.WithFlushInterval(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(t.Context(), testEvent(1)); err != nil {
			t.Fatal(err)
		}
		if n := len(readRecords(t, readFile(t, path))); n != 0 {
			t.Fatalf("records in the file right after Write = %d, want 0 (buffered)", n)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := len(readRecords(t, readFile(t, path))); n != 1 {
			t.Fatalf("records in the file after one flush interval = %d, want 1", n)
		}
		if err := s.Write(t.Context(), testEvent(2)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := len(readRecords(t, readFile(t, path))); n != 2 {
			t.Fatalf("records in the file after two flush intervals = %d, want 2", n)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestFileSinkSync(t *testing.T) {
	s, path := openLog(t, audit.WithFlushInterval(time.Hour))
	for i := 1; i <= 3; i++ {
		if err := s.Write(t.Context(), testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync() = %v", err)
	}
	if head, err := verifyFile(t, path); err != nil || head.Seq != 3 {
		t.Fatalf("Verify() after Sync = %+v, %v, want seq 3, <nil>", head, err)
	}
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync() with nothing new = %v", err)
	}
}

func TestFileSinkClosed(t *testing.T) {
	s, _ := openLog(t)
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := s.Close(); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Close() after Close = %v, want ErrClosed", err)
	}
	if err := s.Write(t.Context(), testEvent(1)); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Write() after Close = %v, want ErrClosed", err)
	}
	if err := s.Sync(); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Sync() after Close = %v, want ErrClosed", err)
	}
}

func TestFileSinkWriteErrors(t *testing.T) {
	s, path := openLog(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Write(ctx, testEvent(1)); !errors.Is(err, context.Canceled) {
		t.Errorf("Write(canceled ctx) = %v, want context.Canceled", err)
	}
	bad := testEvent(1)
	bad.Fields = map[string]any{"ch": make(chan int)}
	if err := s.Write(t.Context(), bad); err == nil {
		t.Errorf("Write(event with a channel field) = nil, want an error")
	}
	if err := s.Write(t.Context(), testEvent(1)); err != nil {
		t.Errorf("Write() after refused writes = %v, want nil", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if head, err := verifyFile(t, path); err != nil || head.Seq != 1 {
		t.Errorf("Verify() = %+v, %v, want seq 1, <nil>", head, err)
	}
}

// TestFileSinkStickyError writes to /dev/full, where every write fails, and
// checks that the first error fails every later call.
func TestFileSinkStickyError(t *testing.T) {
	s, err := audit.OpenFile("/dev/full", audit.WithBufferSize(64))
	if err != nil {
		t.Skipf("no writable /dev/full: %v", err)
	}
	first := s.Write(t.Context(), testEvent(1)) // larger than the buffer: written at once
	if first == nil {
		first = s.Sync()
	}
	if first == nil {
		t.Fatal("Write and Sync to /dev/full = nil, want an error")
	}
	if err := s.Write(t.Context(), testEvent(2)); !errors.Is(err, first) {
		t.Errorf("Write() after a failed write = %v, want %v", err, first)
	}
	if err := s.Close(); !errors.Is(err, first) {
		t.Errorf("Close() after a failed write = %v, want %v", err, first)
	}
}

func TestFileOptionsPanic(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"WithFlushInterval(0)", func() { audit.WithFlushInterval(0) }},
		{"WithFlushInterval(-1s)", func() { audit.WithFlushInterval(-time.Second) }},
		{"WithBufferSize(0)", func() { audit.WithBufferSize(0) }},
		{"OpenFile(nil option)", func() { _, _ = audit.OpenFile(filepath.Join(t.TempDir(), "audit.log"), nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "audit: ") {
					t.Errorf("%s panicked with %v, want an \"audit: \" panic", tt.name, r)
				}
			}()
			tt.f()
		})
	}
}

// TestFileSinkConcurrentWriters has 200 goroutines write at once and checks
// that the log's sequence numbers run 1..n without a gap, that every write
// is in it once, and that each writer's records are in the order it wrote
// them.
func TestFileSinkConcurrentWriters(t *testing.T) {
	const writers, each = 200, 20
	s, path := openLog(t)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				e := testEvent(i)
				e.RequestID = fmt.Sprintf("w%d-%d", w, i)
				e.UserID = strconv.Itoa(w)
				if err := s.Write(t.Context(), e); err != nil {
					t.Errorf("Write(%s) = %v", e.RequestID, err)
				}
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data := readFile(t, path)
	if head, err := audit.Verify(bytes.NewReader(data)); err != nil || head.Seq != writers*each {
		t.Fatalf("Verify() = %+v, %v, want seq %d, <nil>", head, err, writers*each)
	}
	seen := map[string]bool{}
	next := map[string]int{}
	for i, r := range readRecords(t, data) {
		if r.Seq != uint64(i+1) {
			t.Fatalf("line %d has seq %d, want %d", i+1, r.Seq, i+1)
		}
		if seen[r.Event.RequestID] {
			t.Fatalf("request %s recorded twice", r.Event.RequestID)
		}
		seen[r.Event.RequestID] = true
		w := r.Event.UserID
		if want := fmt.Sprintf("w%s-%d", w, next[w]); r.Event.RequestID != want {
			t.Fatalf("seq %d is %s, want %s next from writer %s", r.Seq, r.Event.RequestID, want, w)
		}
		next[w]++
	}
	if len(seen) != writers*each {
		t.Fatalf("log holds %d distinct requests, want %d", len(seen), writers*each)
	}
}
