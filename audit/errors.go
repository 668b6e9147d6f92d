package audit

import (
	"errors"
	"strconv"
)

// Sentinel errors. Test for them with [errors.Is].
var (
	// ErrClosed is returned, possibly wrapped, by a sink's Write, Sync or
	// Close after it has been closed.
	ErrClosed = errors.New("audit: sink closed")
	// ErrTampered is returned, possibly wrapped, when a log has been
	// changed: a record altered, removed, inserted or reordered. A
	// *[TamperError] says where.
	ErrTampered = errors.New("audit: log tampered")
	// ErrTruncated is returned, possibly wrapped, when a log ends in a
	// partial record, as a crash in the middle of a write leaves it. A
	// *[TruncatedError] says where. Every record before the partial one is
	// intact.
	ErrTruncated = errors.New("audit: log truncated")
)

// A TamperError reports the first record of a log that is not what was
// written. errors.Is(err, [ErrTampered]) reports true for it.
type TamperError struct {
	// Line is the 1-based line of the log on which the record was expected,
	// or 0 when the error comes from [OpenFile], which reads only the end of
	// the file and does not count lines.
	Line int
	// Seq is the sequence number the record on Line should have carried, or
	// 0 when unknown. In a log that has not been tampered with, record n is
	// on line n.
	Seq uint64
	// Offset is the byte offset of the start of the line.
	Offset int64
	// Reason says what is wrong, in lower case.
	Reason string
}

func (e *TamperError) Error() string {
	msg := "audit: log tampered"
	if e.Line > 0 {
		msg += " at line " + strconv.Itoa(e.Line)
	} else {
		msg += " at offset " + strconv.FormatInt(e.Offset, 10)
	}
	if e.Seq > 0 {
		msg += " (seq " + strconv.FormatUint(e.Seq, 10) + ")"
	}
	return msg + ": " + e.Reason
}

// Is reports whether target is [ErrTampered].
func (e *TamperError) Is(target error) bool { return target == ErrTampered }

// A TruncatedError reports a log whose last line is a partial record: the
// beginning of a record whose end never reached the file. Every record
// before it is intact. errors.Is(err, [ErrTruncated]) reports true for it.
type TruncatedError struct {
	// Line is the 1-based line of the partial record, or 0 when the error
	// comes from [OpenFile], which does not count lines.
	Line int
	// Seq is the sequence number the partial record would have had.
	Seq uint64
	// Offset is the byte offset at which the partial record starts: the
	// length of the log's intact part.
	Offset int64
	// Size is the length in bytes of the partial record.
	Size int
}

func (e *TruncatedError) Error() string {
	msg := "audit: log truncated: partial record"
	if e.Line > 0 {
		msg += " on line " + strconv.Itoa(e.Line)
	}
	return msg + " (seq " + strconv.FormatUint(e.Seq, 10) + ", " + strconv.Itoa(e.Size) +
		" bytes at offset " + strconv.FormatInt(e.Offset, 10) + ")"
}

// Is reports whether target is [ErrTruncated].
func (e *TruncatedError) Is(target error) bool { return target == ErrTruncated }
