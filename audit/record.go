package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
)

// Genesis is the hash the first record of a log chains from, in place of the
// hash of a previous record: 64 zeros.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// A Head identifies the last record of a log: its sequence number and hash.
// A hash chain shows any change to a record that has a successor, but not
// records cut from the end of the log, nor a log rewritten from the first
// record on by someone who recomputes every hash. Storing the head of a log
// where its writer cannot change it (another system, a signed checkpoint)
// and comparing it with what [Verify] returns later detects both.
type Head struct {
	// Seq is the sequence number of the last record, 0 for an empty log.
	Seq uint64
	// Hash is the hex-encoded SHA-256 hash of the last record, [Genesis]
	// for an empty log.
	Hash string
}

// The record format. A record is one line:
//
//	{"seq":N,"prev":"<hex>","event":{...},"hash":"<hex>"}\n
//
// where hash is the SHA-256 of the bytes before `,"hash"` and prev is the
// hash of the record before (Genesis for the first one).
const (
	recSeq     = `{"seq":`
	recPrev    = `,"prev":"`
	recEvent   = `","event":`
	recHash    = `,"hash":"`
	recEnd     = `"}`
	hashHex    = 2 * sha256.Size
	recTrailer = len(recHash) + hashHex + len(recEnd)
)

// A hexHash is a SHA-256 hash in lower-case hex, as records carry it.
type hexHash [hashHex]byte

func genesisHash() hexHash {
	var h hexHash
	copy(h[:], Genesis)
	return h
}

// appendRecord appends the line (with its newline) of the record seq, which
// chains from prev and holds the JSON object event, and returns the extended
// buffer and the record's hash.
func appendRecord(dst []byte, seq uint64, prev *hexHash, event []byte) ([]byte, hexHash) {
	start := len(dst)
	dst = append(dst, recSeq...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, recPrev...)
	dst = append(dst, prev[:]...)
	dst = append(dst, recEvent...)
	dst = append(dst, event...)
	sum := sha256.Sum256(dst[start:])
	var h hexHash
	hex.Encode(h[:], sum[:])
	dst = append(dst, recHash...)
	dst = append(dst, h[:]...)
	dst = append(dst, recEnd...)
	dst = append(dst, '\n')
	return dst, h
}

// A record is a parsed line.
type record struct {
	seq   uint64
	prev  hexHash
	hash  hexHash
	event []byte
}

// parseRecord parses one line, without its newline, and checks that its hash
// matches its contents. It returns a non-empty reason when the line is not a
// well-formed record or its hash is wrong.
func parseRecord(line []byte) (record, string) {
	var rec record
	rest, ok := bytes.CutPrefix(line, []byte(recSeq))
	if !ok {
		return rec, "malformed record: does not start with " + recSeq
	}
	n, seq := 0, uint64(0)
	for ; n < len(rest) && '0' <= rest[n] && rest[n] <= '9'; n++ {
		d := uint64(rest[n] - '0')
		if seq > (math.MaxUint64-d)/10 {
			return rec, "malformed record: sequence number out of range"
		}
		seq = seq*10 + d
	}
	if n == 0 || rest[0] == '0' {
		return rec, "malformed record: bad sequence number"
	}
	rest, ok = bytes.CutPrefix(rest[n:], []byte(recPrev))
	if !ok || len(rest) < hashHex {
		return rec, "malformed record: bad previous-record hash"
	}
	copy(rec.prev[:], rest)
	rest, ok = bytes.CutPrefix(rest[hashHex:], []byte(recEvent))
	if !ok || len(rest) < recTrailer {
		return rec, "malformed record: no event"
	}
	trailer := rest[len(rest)-recTrailer:]
	hash := trailer[len(recHash) : len(recHash)+hashHex]
	if !bytes.HasPrefix(trailer, []byte(recHash)) || !bytes.HasSuffix(trailer, []byte(recEnd)) {
		return rec, "malformed record: no hash"
	}
	copy(rec.hash[:], hash)
	rec.seq = seq
	rec.event = rest[:len(rest)-recTrailer]
	body := line[:len(line)-recTrailer]
	sum := sha256.Sum256(body)
	var want hexHash
	hex.Encode(want[:], sum[:])
	if want != rec.hash { // also when the hash is not lower-case hex
		return rec, "record altered: its hash does not match its contents"
	}
	if len(rec.event) == 0 || rec.event[0] != '{' || !json.Valid(rec.event) {
		return rec, "malformed record: event is not a JSON object"
	}
	return rec, ""
}

// isPartialRecord reports whether b, the unterminated last line of a log,
// can be what a write cut short leaves: the beginning of a record line. A
// complete record that lacks only its newline counts as partial too.
func isPartialRecord(b []byte) bool {
	if n := min(len(b), len(recSeq)); !bytes.Equal(b[:n], []byte(recSeq[:n])) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var raw json.RawMessage
	switch err := dec.Decode(&raw); {
	case err == nil:
		if dec.InputOffset() != int64(len(b)) {
			return false
		}
		_, reason := parseRecord(b)
		return reason == ""
	default:
		return errors.Is(err, io.ErrUnexpectedEOF)
	}
}
