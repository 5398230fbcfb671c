// Package redistest starts a real redis-server for a test package. Tests in this project never
// talk to a shared Redis: each package gets its own server on a free port in a temp dir, and
// each test its own logical database, so no two tests ever see each other's keys.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// databases is how many logical databases the server offers; one per test.
const databases = 10000

// Server is one redis-server process.
type Server struct {
	Addr string
	cmd  *exec.Cmd
	dir  string
	next atomic.Int64
}

// pkgServer is the package's server, set once by Main before any test runs. It is the one
// piece of package state here, because TestMain cannot hand values to tests any other way.
var pkgServer *Server

// Main starts a server, runs the package's tests and stops it. Call it from TestMain.
func Main(m *testing.M) {
	s, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "redistest:", err)
		os.Exit(1)
	}
	pkgServer = s
	code := m.Run()
	s.Stop()
	os.Exit(code)
}

// Start launches redis-server on a free port. A port taken between probing and binding is
// retried with another.
func Start() (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found on PATH (make test installs it): %w", err)
	}
	var lastErr error
	for range 5 {
		s, err := startOnce(bin)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startOnce(bin string) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--databases", strconv.Itoa(databases),
		"--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, dir: dir}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s.ping() == nil {
			return s, nil
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	log := tail(filepath.Join(dir, "redis.log"))
	s.Stop()
	return nil, fmt.Errorf("redis-server on port %d did not answer: %s", port, log)
}

func (s *Server) ping() error {
	c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Stop kills the server and removes its directory.
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
	os.RemoveAll(s.dir)
}

// NextDB hands out a fresh logical database number.
func (s *Server) NextDB() int {
	n := int(s.next.Add(1))
	if n >= databases {
		panic("redistest: out of logical databases")
	}
	return n
}

// URL is a redis:// URL for a fresh logical database on the package's server.
func URL(t testing.TB) string {
	t.Helper()
	s := server(t)
	return fmt.Sprintf("redis://%s/%d", s.Addr, s.NextDB())
}

// Client opens a client on a fresh logical database of the package's server, closed when the
// test ends.
func Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	s := server(t)
	c := redis.NewClient(&redis.Options{Addr: s.Addr, DB: s.NextDB()})
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redistest: ping: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Package returns the package's server, for tests that need its address (outage wrappers).
func Package(t testing.TB) *Server { return server(t) }

func server(t testing.TB) *Server {
	t.Helper()
	if pkgServer == nil {
		t.Fatal("redistest: call redistest.Main(m) from TestMain first")
	}
	return pkgServer
}

// CPUTime is the CPU time redis-server has used so far (user and system), read from
// /proc; ok is false where that is not available. Benchmarks use it to price what a request
// costs the server, which on a machine that runs everything at once is part of the price.
func (s *Server) CPUTime() (d time.Duration, ok bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name, field 2, is in parentheses and may hold spaces; fields after it are
	// plain. utime and stime are fields 14 and 15, in clock ticks of 1/100 s on Linux.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}
