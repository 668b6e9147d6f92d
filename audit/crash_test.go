package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxykit/proxy/audit"
)

// crashChildEnv names the log a child process of TestFileSinkCrash writes.
const crashChildEnv = "AUDIT_TEST_CRASH_CHILD_LOG"

// TestFileSinkCrash runs writers in a child process, kills it with SIGKILL
// at a random point and checks what the log promises after a crash: every
// record whose Write returned before a completed Sync is in the log, the
// chain of what is there is intact, and a partial last line is reported as
// a truncation, not as tampering, and can be repaired and continued.
//
// The child reports on stdout, under one lock, "ret <id>" after each Write
// returns, "sync <k>" before its k-th Sync and "synced <k>" after it. Every
// id reported before "sync k" was written before Sync k began, so it is
// durable once "synced k" is reported.
func TestFileSinkCrash(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("needs SIGKILL")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("cannot re-run the test binary: %v", err)
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	for round := range 2 {
		t.Run(fmt.Sprint("round ", round), func(t *testing.T) {
			crashRound(t, exe, 2+rng.IntN(15))
		})
	}
}

func crashRound(t *testing.T, exe string, killAfter int) {
	path := filepath.Join(t.TempDir(), "audit.log")
	cmd := exec.Command(exe, "-test.run=^TestFileSinkCrash$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe() // the child exits when this closes
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()

	var (
		returned []string           // ids in the order the child reported them
		mark     = map[string]int{} // len(returned) when "sync k" was reported
		durable  int                // returned[:durable] must be in the log
		synced   int
	)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		verb, arg, _ := strings.Cut(sc.Text(), " ")
		switch verb {
		case "ret":
			returned = append(returned, arg)
		case "sync":
			mark[arg] = len(returned)
		case "synced":
			durable = mark[arg]
			if synced++; synced == killAfter {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
			}
		default:
			t.Errorf("child: %s", sc.Text())
		}
	}
	err = cmd.Wait()
	if synced < killAfter {
		t.Fatalf("child ended after %d syncs, before it was killed: %v\n%s", synced, err, stderr.Bytes())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Exited() {
		t.Fatalf("child ended with %v, want killed by a signal\n%s", err, stderr.Bytes())
	}
	t.Logf("killed after %d syncs: %d writes returned, %d of them before the last sync", synced, len(returned), durable)

	data := readFile(t, path)
	head, err := audit.Verify(bytes.NewReader(data))
	torn := len(data) > 0 && data[len(data)-1] != '\n'
	switch {
	case torn && (!errors.Is(err, audit.ErrTruncated) || errors.Is(err, audit.ErrTampered)):
		t.Fatalf("Verify(log ending in a partial line) = %v, want ErrTruncated only", err)
	case !torn && err != nil:
		t.Fatalf("Verify(log ending in a newline) = %v, want nil", err)
	}
	t.Logf("log: %d intact records, partial last line: %v", head.Seq, torn)

	recs := readRecords(t, data[:bytes.LastIndexByte(data, '\n')+1])
	if uint64(len(recs)) != head.Seq {
		t.Fatalf("log has %d complete lines, Verify found %d intact records", len(recs), head.Seq)
	}
	inLog := make(map[string]bool, len(recs))
	for _, r := range recs {
		inLog[r.Event.RequestID] = true
	}
	for _, id := range returned[:durable] {
		if !inLog[id] {
			t.Fatalf("request %s was written and synced before the crash, but is not in the log", id)
		}
	}

	// The log can be repaired and continued.
	removed, err := audit.Repair(path)
	if err != nil || (len(removed) > 0) != torn {
		t.Fatalf("Repair() = %d bytes, %v; want the partial line (%v) removed", len(removed), err, torn)
	}
	s, err := audit.OpenFile(path)
	if err != nil {
		t.Fatalf("OpenFile(repaired log) = %v", err)
	}
	if err := s.Write(t.Context(), testEvent(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := verifyFile(t, path); err != nil || got.Seq != head.Seq+1 {
		t.Fatalf("Verify(continued log) = %+v, %v, want seq %d, <nil>", got, err, head.Seq+1)
	}
}

// crashChild writes to the log at path from four goroutines and syncs it
// after every 25 writes or so, reporting on stdout, until it is killed or its stdin closes. A
// small buffer makes the sink write lines to the file in several pieces, so
// that a kill can leave a partial line.
func crashChild(path string) {
	s, err := audit.OpenFile(path, audit.WithBufferSize(512), audit.WithFlushInterval(time.Hour))
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format+"\n", args...)
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(3) // the parent is gone
	}()
	var writes atomic.Int64
	tick := make(chan struct{}, 1) // a sync is due: 25 more writes returned
	for w := range 4 {
		go func() {
			for i := 0; ; i++ {
				e := testEvent(i)
				e.RequestID = fmt.Sprintf("w%d-%d", w, i)
				if err := s.Write(context.Background(), e); err != nil {
					say("write: %v", err)
					os.Exit(4)
				}
				say("ret %s", e.RequestID)
				if writes.Add(1)%25 == 0 {
					select {
					case tick <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	for k := 1; ; k++ {
		<-tick
		say("sync %d", k)
		if err := s.Sync(); err != nil {
			say("sync: %v", err)
			os.Exit(5)
		}
		say("synced %d", k)
	}
}
