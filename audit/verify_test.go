package audit_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/proxykit/proxy/audit"
)

const bigLogRecords = 10_000

var (
	bigLogOnce sync.Once
	bigLogData []byte
)

// bigLog returns the bytes of a log of 10 000 records, written once per
// test binary.
func bigLog(t *testing.T) []byte {
	t.Helper()
	bigLogOnce.Do(func() { bigLogData = readFile(t, writeLog(t, bigLogRecords)) })
	if bigLogData == nil {
		t.Fatal("writing the 10 000-record log failed")
	}
	return bigLogData
}

// splitLines returns the lines of data, each with its newline.
func splitLines(data []byte) [][]byte {
	return bytes.SplitAfter(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

// joinLines returns the log made of lines, each of which ends in a newline
// except perhaps the last.
func joinLines(lines [][]byte) []byte {
	return bytes.Join(lines, nil)
}

// withLines returns a copy of lines changed by f.
func withLines(data []byte, f func(lines [][]byte) [][]byte) []byte {
	lines := splitLines(bytes.Clone(data))
	lines[len(lines)-1] = append(lines[len(lines)-1], '\n')
	return joinLines(f(lines))
}

// forge returns a well-formed record line with sequence number seq that
// chains from prev, its hash recomputed as a forger would.
func forge(seq uint64, prev string, event string) []byte {
	body := `{"seq":` + strconv.FormatUint(seq, 10) + `,"prev":"` + prev + `","event":` + event
	sum := sha256.Sum256([]byte(body))
	return []byte(body + `,"hash":"` + hex.EncodeToString(sum[:]) + "\"}\n")
}

func recordHash(line []byte) string {
	s := strings.TrimSuffix(string(line), "\n")
	return s[len(s)-66 : len(s)-2]
}

// wantTamper checks that err is a *TamperError (and not a truncation) at
// line, expecting sequence number line there.
func wantTamper(t *testing.T, err error, line int) {
	t.Helper()
	var terr *audit.TamperError
	if !errors.As(err, &terr) || !errors.Is(err, audit.ErrTampered) || errors.Is(err, audit.ErrTruncated) {
		t.Fatalf("Verify() = %v, want a *TamperError at line %d", err, line)
	}
	if terr.Line != line || terr.Seq != uint64(line) {
		t.Fatalf("Verify() = %v (line %d, seq %d), want line %d, seq %d", err, terr.Line, terr.Seq, line, line)
	}
}

func TestVerifyUntouched(t *testing.T) {
	data := bigLog(t)
	lines := splitLines(data)
	head, err := audit.Verify(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Verify(untouched log) = %v, want nil", err)
	}
	if want := (audit.Head{Seq: bigLogRecords, Hash: recordHash(lines[len(lines)-1])}); head != want {
		t.Fatalf("Verify(untouched log) head = %+v, want %+v", head, want)
	}
	empty, err := audit.Verify(strings.NewReader(""))
	if err != nil || empty != (audit.Head{Hash: audit.Genesis}) {
		t.Fatalf("Verify(empty log) = %+v, %v, want {0 Genesis}, <nil>", empty, err)
	}
}

// TestVerifyByteFlip flips one byte of a 10 000-record log, at chosen and at
// random offsets, and checks that Verify fails at exactly the record that
// holds it.
func TestVerifyByteFlip(t *testing.T) {
	data := bigLog(t)
	lines := splitLines(data)
	lineStart := func(n int) int { return len(joinLines(lines[:n-1])) }
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	offsets := map[string]int{
		"first byte":                  0,
		"sequence number of line 2":   lineStart(2) + len(`{"seq":`),
		"prev hash of line 4000":      lineStart(4000) + len(`{"seq":4000,"prev":"`) + 10,
		"event of line 5000":          lineStart(5000) + 100,
		"hash of line 6000":           lineStart(6001) - 20,
		"newline ending line 7000":    lineStart(7001) - 1,
		"first byte of the last line": lineStart(bigLogRecords),
		"last byte before the end":    len(data) - 2,
		"final newline":               len(data) - 1,
	}
	for i := range 6 {
		offsets["random "+strconv.Itoa(i)] = rng.IntN(len(data))
	}
	for name, off := range offsets {
		t.Run(name, func(t *testing.T) {
			mask := byte(1 + rng.IntN(255))
			changed := bytes.Clone(data)
			changed[off] ^= mask
			_, err := audit.Verify(bytes.NewReader(changed))
			wantTamper(t, err, 1+bytes.Count(data[:off], []byte("\n")))
		})
	}
}

// TestVerifyRecordChanges removes, swaps and inserts whole records of a
// 10 000-record log.
func TestVerifyRecordChanges(t *testing.T) {
	data := bigLog(t)
	last := bigLogRecords
	tests := []struct {
		name     string
		change   func(lines [][]byte) [][]byte
		wantLine int
	}{
		{"remove first", func(l [][]byte) [][]byte { return l[1:] }, 1},
		{"remove 4321", func(l [][]byte) [][]byte { return append(l[:4320], l[4321:]...) }, 4321},
		{"remove second to last", func(l [][]byte) [][]byte { return append(l[:last-2], l[last-1]) }, last - 1},
		{"swap 1 and 2", func(l [][]byte) [][]byte { l[0], l[1] = l[1], l[0]; return l }, 1},
		{"swap 500 and 9000", func(l [][]byte) [][]byte { l[499], l[8999] = l[8999], l[499]; return l }, 500},
		{"swap last two", func(l [][]byte) [][]byte { l[last-2], l[last-1] = l[last-1], l[last-2]; return l }, last - 1},
		{"insert copy of 10 before 2500", func(l [][]byte) [][]byte {
			return append(l[:2499:2499], append([][]byte{l[9]}, l[2499:]...)...)
		}, 2500},
		{"insert copy of 2499 after itself", func(l [][]byte) [][]byte {
			return append(l[:2499:2499], append([][]byte{l[2498]}, l[2499:]...)...)
		}, 2500},
		{"append copy of 10", func(l [][]byte) [][]byte { return append(l, l[9]) }, last + 1},
		{"insert forged record with a bad hash", func(l [][]byte) [][]byte {
			forged := bytes.Replace(bytes.Clone(l[2999]), []byte(`"req_3000"`), []byte(`"req_XXXX"`), 1)
			return append(l[:2999:2999], append([][]byte{forged}, l[2999:]...)...)
		}, 3000},
		{"alter a record and recompute its hash", func(l [][]byte) [][]byte {
			l[6999] = forge(7000, recordHash(l[6998]), `{"request_id":"forged"}`)
			return l
		}, 7001},
		// A forger who recomputes a record's hash and links it to its
		// predecessor is caught on the next line: only a rewrite of the
		// whole rest of the log, or a stored Head, goes further.
		{"insert forged record that links to its predecessor", func(l [][]byte) [][]byte {
			forged := forge(3000, recordHash(l[2998]), `{"request_id":"forged"}`)
			return append(l[:2999:2999], append([][]byte{forged}, l[2999:]...)...)
		}, 3001},
		{"empty line inserted", func(l [][]byte) [][]byte {
			return append(l[:99:99], append([][]byte{[]byte("\n")}, l[99:]...)...)
		}, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changed := withLines(data, tt.change)
			_, err := audit.Verify(bytes.NewReader(changed))
			wantTamper(t, err, tt.wantLine)
		})
	}
}

// TestVerifyRemovedLastRecord shows what a hash chain cannot show by itself:
// a log cut after a complete record verifies, and only the head stored
// elsewhere reveals the missing record.
func TestVerifyRemovedLastRecord(t *testing.T) {
	data := bigLog(t)
	lines := splitLines(data)
	stored := audit.Head{Seq: bigLogRecords, Hash: recordHash(lines[len(lines)-1])}
	head, err := audit.Verify(bytes.NewReader(joinLines(lines[:len(lines)-1])))
	if err != nil {
		t.Fatalf("Verify(log without its last record) = %v, want nil", err)
	}
	if head == stored || head.Seq != bigLogRecords-1 {
		t.Fatalf("Verify(log without its last record) head = %+v, want seq %d, unlike the stored %+v", head, bigLogRecords-1, stored)
	}
}

// TestVerifyTruncated cuts a log inside its last record and checks that
// Verify reports a truncation, not tampering, after verifying the rest.
func TestVerifyTruncated(t *testing.T) {
	data := bigLog(t)
	lines := splitLines(data)
	lastStart := len(data) - len(lines[len(lines)-1]) - 1 // the last line's newline was trimmed
	tests := []struct {
		name string
		cut  int // bytes kept
	}{
		{"one byte of the last record", lastStart + 1},
		{"inside the event", lastStart + 150},
		{"inside the hash", len(data) - 30},
		{"all but the newline", len(data) - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head, err := audit.Verify(bytes.NewReader(data[:tt.cut]))
			var terr *audit.TruncatedError
			if !errors.As(err, &terr) || !errors.Is(err, audit.ErrTruncated) || errors.Is(err, audit.ErrTampered) {
				t.Fatalf("Verify() = %v, want a *TruncatedError only", err)
			}
			want := audit.TruncatedError{Line: bigLogRecords, Seq: bigLogRecords, Offset: int64(lastStart), Size: tt.cut - lastStart}
			if *terr != want {
				t.Errorf("Verify() error = %+v, want %+v", *terr, want)
			}
			if head.Seq != bigLogRecords-1 || head.Hash != recordHash(lines[len(lines)-2]) {
				t.Errorf("Verify() head = %+v, want record %d", head, bigLogRecords-1)
			}
		})
	}
	t.Run("unterminated line that is not a record", func(t *testing.T) {
		_, err := audit.Verify(io.MultiReader(bytes.NewReader(data), strings.NewReader(`{"seq":10001,"prev":"x"}`)))
		wantTamper(t, err, bigLogRecords+1)
	})
}

// errReader fails after the data.
type errReader struct{ data io.Reader }

var errDisk = errors.New("disk on fire")

func (r errReader) Read(p []byte) (int, error) {
	n, err := r.data.Read(p)
	if err == io.EOF {
		return n, errDisk
	}
	return n, err
}

func TestVerifyReadError(t *testing.T) {
	data := bigLog(t)
	_, err := audit.Verify(errReader{bytes.NewReader(data[:1000])})
	if !errors.Is(err, errDisk) || errors.Is(err, audit.ErrTampered) || errors.Is(err, audit.ErrTruncated) {
		t.Fatalf("Verify(failing reader) = %v, want %v only", err, errDisk)
	}
}
