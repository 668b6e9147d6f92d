package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// Defaults of a [FileSink].
const (
	// DefaultFlushInterval is how often a FileSink flushes and syncs its
	// buffer unless [WithFlushInterval] says otherwise.
	DefaultFlushInterval = time.Second
	// DefaultBufferSize is the size of a FileSink's buffer unless
	// [WithBufferSize] says otherwise.
	DefaultBufferSize = 64 << 10
)

// A FileOption configures a [FileSink].
type FileOption func(*fileConfig)

type fileConfig struct {
	flushInterval time.Duration
	bufferSize    int
}

// WithFlushInterval sets how often a FileSink writes its buffer to the file
// and syncs the file to stable storage, which bounds how many records a
// crash can lose: those written in the last interval. The default is
// [DefaultFlushInterval]. WithFlushInterval panics if d is not positive.
func WithFlushInterval(d time.Duration) FileOption {
	if d <= 0 {
		panic("audit: WithFlushInterval of a non-positive duration " + d.String())
	}
	return func(c *fileConfig) { c.flushInterval = d }
}

// WithBufferSize sets the size in bytes of a FileSink's write buffer. A full
// buffer is written to the file (but not synced) at once. The default is
// [DefaultBufferSize]. WithBufferSize panics if n is not positive.
func WithBufferSize(n int) FileOption {
	if n <= 0 {
		panic(fmt.Sprintf("audit: WithBufferSize(%d): size must be positive", n))
	}
	return func(c *fileConfig) { c.bufferSize = n }
}

// A FileSink writes events to a tamper-evident log file, one JSON record per
// line. Each record carries a sequence number (1, 2, 3, ...) and the
// SHA-256 hash of the record before it, so that changing, removing,
// inserting or reordering records breaks the chain where it happened;
// [Verify] finds the first broken link. The format of a line is
//
//	{"seq":2,"prev":"<hash of record 1>","event":{...},"hash":"<hash>"}
//
// where hash is the SHA-256, in lower-case hex, of the line's bytes before
// `,"hash"`, and the first record's prev is [Genesis].
//
// # Durability
//
// Write puts the record in a buffer and returns. The buffer reaches the file
// when it is full, and the file is synced to stable storage (fsync) by
// [FileSink.Sync], by [FileSink.Close], and every flush interval (see
// [WithFlushInterval]) by a goroutine that the first Write starts and Close
// stops. A crash therefore loses at most the records written since the last
// sync, and may leave a partial last line, which [Verify] reports as
// [ErrTruncated] and [Repair] removes. After any error writing or syncing
// the file, the sink fails every later call with that error: the file may
// end in a partial record, and records appended after it would read as
// tampering.
//
// # Concurrency
//
// A FileSink is safe for concurrent use. Records reach the file in the
// order of their sequence numbers whatever the number of writers: the
// number, the hash and the buffered write are done under one lock, which
// Write waits for only until its context is done. Only one FileSink, in one
// process, may write a file at a time; a second would fork the chain.
//
// Use [OpenFile]; the zero value is not usable.
type FileSink struct {
	path     string
	f        *os.File
	interval time.Duration

	// sem is a one-slot semaphore that guards the fields below it. Unlike a
	// sync.Mutex, it can be waited for until a context is done.
	sem    chan struct{}
	w      *bufio.Writer
	line   []byte  // scratch buffer for the record being written
	seq    uint64  // sequence number of the last record written
	prev   hexHash // hash of the last record written
	err    error   // first write or sync error; fails every later call
	closed bool
	stop   chan struct{} // closed by Close to stop the flusher; nil until it starts
	done   chan struct{} // closed by the flusher when it returns

	// syncMu serializes syncing and closing the file and guards synced. It
	// is held without sem while the file syncs, so that writers can go on
	// filling the buffer.
	syncMu sync.Mutex
	synced uint64 // sequence number of the last record known to be synced
}

var _ Sink = (*FileSink)(nil)

// OpenFile opens the log at path for appending, creating it (mode 0600) if
// it does not exist, and returns a sink that continues its hash chain from
// its last record. OpenFile reads only the end of the file; use [Verify] to
// check the whole log.
//
// If the file ends in a partial record, as a crash can leave it, OpenFile
// returns an error matching [ErrTruncated] (a *[TruncatedError]) and leaves
// the file alone: call [Repair] to remove the partial record, then OpenFile
// again. If its last line is not a record at all, or its last record's hash
// is wrong, OpenFile returns an error matching [ErrTampered]. OpenFile panics
// if an option is nil.
func OpenFile(path string, opts ...FileOption) (*FileSink, error) {
	cfg := fileConfig{flushInterval: DefaultFlushInterval, bufferSize: DefaultBufferSize}
	for _, opt := range opts {
		if opt == nil {
			panic("audit: OpenFile with a nil FileOption")
		}
		opt(&cfg)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: %w", err)
	}
	t, err := readTail(f, info.Size())
	if err == nil {
		err = t.check()
	}
	if err == nil && info.Size() == 0 {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	s := &FileSink{
		path:     path,
		f:        f,
		interval: cfg.flushInterval,
		sem:      make(chan struct{}, 1),
		w:        bufio.NewWriterSize(f, cfg.bufferSize),
		seq:      t.seq,
		prev:     t.hash,
	}
	s.synced = s.seq
	return s, nil
}

// Write appends a record of e to the log. It returns once the record is in
// the sink's buffer: see the type's documentation for when it is synced.
// Write waits for the sink's lock only until ctx is done, and then returns
// ctx.Err() without writing; it cannot interrupt a write to the file that
// is already under way. Write fails if e cannot be encoded as JSON.
func (s *FileSink) Write(ctx context.Context, e Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ev, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: encode event: %w", err)
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.sem }()
	if s.closed {
		return ErrClosed
	}
	if s.err != nil {
		return s.err
	}
	seq := s.seq + 1
	var hash hexHash
	s.line, hash = appendRecord(s.line[:0], seq, &s.prev, ev)
	if _, err := s.w.Write(s.line); err != nil {
		s.err = fmt.Errorf("audit: write %s: %w", s.path, err)
		return s.err
	}
	s.seq, s.prev = seq, hash
	if s.stop == nil {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.flushLoop(s.stop, s.done)
	}
	return nil
}

// Sync writes the buffer to the file and syncs the file to stable storage.
// When Sync returns nil, every record whose Write returned before Sync was
// called is durable. Sync blocks until the file system has answered.
func (s *FileSink) Sync() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.sem <- struct{}{}
	if s.closed {
		<-s.sem
		return ErrClosed
	}
	err := s.flushLocked()
	seq := s.seq
	<-s.sem
	if err != nil || seq == s.synced {
		return err
	}
	if err := s.f.Sync(); err != nil {
		return s.fail(fmt.Errorf("audit: sync %s: %w", s.path, err))
	}
	s.synced = seq
	return nil
}

// Head returns the sequence number and hash of the last record written,
// which may not be synced yet.
func (s *FileSink) Head() Head {
	s.sem <- struct{}{}
	defer func() { <-s.sem }()
	return Head{Seq: s.seq, Hash: string(s.prev[:])}
}

// Close stops the flusher, writes and syncs what the buffer holds and closes
// the file. It returns the first error the sink met, if any. Close after
// Close returns [ErrClosed].
func (s *FileSink) Close() error {
	s.sem <- struct{}{}
	if s.closed {
		<-s.sem
		return ErrClosed
	}
	s.closed = true
	stop, done := s.stop, s.done
	<-s.sem
	if stop != nil {
		close(stop)
		<-done
	}

	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.sem <- struct{}{}
	err := s.flushLocked()
	seq := s.seq
	<-s.sem
	if err == nil && seq != s.synced {
		if serr := s.f.Sync(); serr != nil {
			err = fmt.Errorf("audit: sync %s: %w", s.path, serr)
		}
	}
	if cerr := s.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("audit: %w", cerr)
	}
	return err
}

// flushLocked writes the buffer to the file. The caller holds sem.
func (s *FileSink) flushLocked() error {
	if s.err != nil {
		return s.err
	}
	if err := s.w.Flush(); err != nil {
		s.err = fmt.Errorf("audit: write %s: %w", s.path, err)
	}
	return s.err
}

// fail records err as the sink's error, unless it already has one, and
// returns the sink's error.
func (s *FileSink) fail(err error) error {
	s.sem <- struct{}{}
	defer func() { <-s.sem }()
	if s.err == nil {
		s.err = err
	}
	return s.err
}

// flushLoop syncs the sink every interval until stop is closed. An error is
// kept by the sink and returned by the next Write.
func (s *FileSink) flushLoop(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			_ = s.Sync() // a failure is sticky: the next Write reports it
		}
	}
}

// Repair removes a partial last record from the log at path, as a crash in
// the middle of a write leaves it, so that [OpenFile] can continue the log.
// It returns the bytes it removed, or nil when the log ends in a complete
// record. Repair changes nothing and returns an error matching [ErrTampered]
// when the last line is not the beginning of a record.
func Repair(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	removed, err := repair(f)
	if cerr := f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("audit: %w", cerr)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: repair %s: %w", path, err)
	}
	return removed, nil
}

func repair(f *os.File) ([]byte, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	t, err := readTail(f, info.Size())
	if err != nil {
		return nil, err
	}
	err = t.check()
	if !errors.Is(err, ErrTruncated) {
		return nil, err // nil when there is nothing to repair
	}
	if err := f.Truncate(t.partialOff); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	return t.partial, nil
}

// A tail is the end of a log file.
type tail struct {
	seq        uint64  // sequence number of the last complete record, or 0
	hash       hexHash // hash of the last complete record, or genesis
	last       []byte  // the last complete line, without its newline
	lastOff    int64
	hasLast    bool
	partial    []byte // the bytes after the last newline, nil when none
	partialOff int64
}

// readTail reads the end of the file of size bytes: its last complete line
// and what follows it. It reads backwards in growing windows, so that it
// costs the length of the last line, not of the file.
func readTail(f io.ReaderAt, size int64) (tail, error) {
	t := tail{hash: genesisHash()}
	for window := int64(4 << 10); size > 0; window *= 2 {
		n := min(window, size)
		base := size - n
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, base); err != nil && !errors.Is(err, io.EOF) {
			return t, err
		}
		i := bytes.LastIndexByte(buf, '\n')
		if i < 0 && n < size {
			continue
		}
		if i < 0 {
			t.partial, t.partialOff = buf, 0
			return t, nil
		}
		j := bytes.LastIndexByte(buf[:i], '\n')
		if j < 0 && n < size {
			continue
		}
		t.partial, t.partialOff = buf[i+1:], base+int64(i)+1
		t.last, t.lastOff, t.hasLast = buf[j+1:i], base+int64(j)+1, true
		if len(t.partial) == 0 {
			t.partial = nil
		}
		return t, nil
	}
	return t, nil
}

// check parses the tail's last record into t.seq and t.hash and reports a partial
// record after it as a *TruncatedError, and anything else wrong as a
// *TamperError.
func (t *tail) check() error {
	if t.hasLast {
		rec, reason := parseRecord(t.last)
		if reason != "" {
			return &TamperError{Offset: t.lastOff, Reason: reason}
		}
		t.seq, t.hash = rec.seq, rec.hash
	}
	if t.partial == nil {
		return nil
	}
	if isPartialRecord(t.partial) {
		return &TruncatedError{Seq: t.seq + 1, Offset: t.partialOff, Size: len(t.partial)}
	}
	return &TamperError{Seq: t.seq + 1, Offset: t.partialOff,
		Reason: "last line is neither a record nor the beginning of one"}
}

// syncDir syncs the directory dir, so that a file just created in it
// survives a crash.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be synced there; NTFS journals them
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
