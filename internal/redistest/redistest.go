// Package redistest runs a real Redis server for the tests of the
// Redis-backed packages: one redis-server process per test, on a free
// loopback port, with no persistence, stopped when the test ends.
//
// Tests that need Redis call [Start]. When redis-server is not installed the
// test is skipped on a developer's machine, but fails when the environment
// variable PROXY_REQUIRE_REDIS is set (the test script and CI set it), so a
// missing server can never turn CI green by skipping.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a missing redis-server
// into a test failure instead of a skip.
const RequireEnv = "PROXY_REQUIRE_REDIS"

// A Server is a redis-server process owned by one test. Its methods are
// meant for the test's goroutine.
type Server struct {
	t    testing.TB
	bin  string
	port int
	cmd  *exec.Cmd
}

// Start runs a redis-server on a free loopback port and stops it when the
// test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("redis-server not found and %s is set: %v", RequireEnv, err)
		}
		t.Skipf("redis-server not installed (set %s to make this a failure): %v", RequireEnv, err)
	}
	s := &Server{t: t, bin: bin, port: freePort(t)}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Stop kills the server and waits for it to exit. Stopping a stopped server
// does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same port, empty, and returns once
// it accepts commands. Restarting a running server stops it first.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "yes")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatalf("redis-server stdout: %v", err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.cmd = cmd
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var seen []string
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "Ready to accept connections") {
				ready <- nil
				// Keep draining so the server never blocks on a full pipe.
				for sc.Scan() {
				}
				return
			}
			seen = append(seen, line)
		}
		ready <- fmt.Errorf("redis-server exited before it was ready:\n%s", strings.Join(seen, "\n"))
	}()
	select {
	case err := <-ready:
		if err != nil {
			s.t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		s.t.Fatal("redis-server not ready after 10s")
	}
}

// freePort asks the kernel for a loopback port that is free now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
