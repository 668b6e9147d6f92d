package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Verify reads a log written by a [FileSink] and checks its hash chain: that
// every record's hash matches its contents, that the sequence numbers run
// 1, 2, 3, ... without a gap, and that every record carries the hash of the
// one before it ([Genesis] for the first).
//
// Verify stops at the first record that breaks the chain and returns a
// *[TamperError] naming its line and the sequence number expected there.
// A changed byte is reported on the line that holds it; a record removed,
// inserted or moved is reported on the first line whose record is not the
// one expected. A record forged with a recomputed hash that links to its
// predecessor is reported on the line after it, and a log rewritten from
// that record on is not detected at all: compare the returned [Head] with
// one stored elsewhere to catch it, and to catch records cut from the end.
//
// A last line without a newline that is the beginning of a record is what a
// crash in the middle of a write leaves, not tampering: Verify returns a
// *[TruncatedError] for it, and every record before it is intact. Any other
// unterminated last line is tampering.
//
// Verify returns the head of the intact part of the log in every case, and
// wraps an error from r (which is neither ErrTampered nor ErrTruncated).
func Verify(r io.Reader) (Head, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		seq  uint64
		prev = genesisHash()
		off  int64
		buf  []byte
	)
	head := func() Head { return Head{Seq: seq, Hash: string(prev[:])} }
	for line := 1; ; line++ {
		b, err := readLine(br, buf)
		if cap(b) > cap(buf) && len(b) > br.Size() {
			buf = b // keep the grown buffer for the next long line
		}
		if err != nil && err != io.EOF {
			return head(), fmt.Errorf("audit: verify: reading line %d: %w", line, err)
		}
		if len(b) == 0 {
			return head(), nil
		}
		want := seq + 1
		if b[len(b)-1] != '\n' {
			if isPartialRecord(b) {
				return head(), &TruncatedError{Line: line, Seq: want, Offset: off, Size: len(b)}
			}
			return head(), &TamperError{Line: line, Seq: want, Offset: off,
				Reason: "last line is neither a record nor the beginning of one"}
		}
		rec, reason := parseRecord(b[:len(b)-1])
		if reason == "" {
			reason = chainReason(rec, want, &prev)
		}
		if reason != "" {
			return head(), &TamperError{Line: line, Seq: want, Offset: off, Reason: reason}
		}
		seq, prev = rec.seq, rec.hash
		off += int64(len(b))
	}
}

// chainReason reports how rec, a well-formed record, fails to follow the
// record whose hash is prev when it should carry sequence number want, or
// "" when it follows it.
func chainReason(rec record, want uint64, prev *hexHash) string {
	got := strconv.FormatUint(rec.seq, 10)
	switch {
	case rec.seq < want:
		return "sequence number " + got + " repeats an earlier one: record inserted, duplicated or moved"
	case rec.seq > want:
		return "sequence number " + got + " skips " + strconv.FormatUint(want, 10) + ": record removed or moved"
	case rec.prev != *prev:
		return "previous-record hash does not match the record before it: record removed, inserted or moved"
	}
	return ""
}

// readLine returns the next line of br, with its newline if it has one. It
// returns io.EOF with the last line when that line has no newline, and with
// no bytes at the end of the input. The line is valid until the next call:
// it is br's buffer when the line fits in it, and buf, grown, otherwise.
func readLine(br *bufio.Reader, buf []byte) ([]byte, error) {
	frag, err := br.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return frag, err
	}
	buf = append(buf[:0], frag...)
	for {
		frag, err := br.ReadSlice('\n')
		buf = append(buf, frag...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return buf, err
		}
	}
}
