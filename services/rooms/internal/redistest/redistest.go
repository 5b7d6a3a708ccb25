// Package redistest starts real redis-server processes for tests: each Start
// runs a fresh, empty server that keeps nothing on disk, on a loopback port,
// and stops it when the test ends.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	attempts     = 3                // servers started before giving up on finding a free port
	readyTimeout = 10 * time.Second // for a server to answer PING
	stopTimeout  = 5 * time.Second  // from SIGTERM to SIGKILL
	tailLines    = 20               // of the server's log in a failure message
)

// errBind is returned by start when the server could not bind its port,
// which another process took after it was picked.
var errBind = errors.New("port already in use")

// Start runs a redis-server on 127.0.0.1, waits until it answers PING and
// returns its address, "127.0.0.1:port". The server is stopped at the end of
// the test. If redis-server is not on PATH the test is skipped, or fails
// when CI is "true".
func Start(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is needed: %v (.ci/run installs it with apt-get)", err)
		}
		t.Skipf("redis-server not installed: %v (apt-get install redis-server)", err)
	}
	for range attempts {
		var addr string
		if addr, err = start(t, bin); err == nil {
			return addr
		}
		if !errors.Is(err, errBind) {
			t.Fatal(err)
		}
	}
	t.Fatalf("redis-server found no free port in %d tries, the last: %v", attempts, err)
	return ""
}

// start runs one redis-server on a port that was free a moment ago, in a
// temporary directory of its own, and waits for it to answer.
func start(t testing.TB, bin string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	dir := t.TempDir()
	logFile := filepath.Join(dir, "redis.log")
	// What the server writes before it opens its log file, such as a
	// configuration error.
	console, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		return "", err
	}
	defer console.Close()
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--logfile", logFile,
		"--protected-mode", "no",
		"--daemonize", "no",
	)
	cmd.Stdout, cmd.Stderr = console, console
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			cmd.Process.Kill()
			<-exited
		}
	})

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-exited:
			log := logTail(dir)
			if strings.Contains(log, "Address already in use") {
				return "", fmt.Errorf("redis-server on %s: %w; its log ends:\n%s", addr, errBind, log)
			}
			return "", fmt.Errorf("redis-server on %s exited (%v) before answering PING; its log ends:\n%s", addr, cmd.ProcessState, log)
		default:
		}
		err := ping(addr, cmd.Process.Pid)
		if err == nil {
			return addr, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("redis-server on %s did not answer PING within %v (%v); its log ends:\n%s", addr, readyTimeout, err, logTail(dir))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a loopback port that nothing listened on a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ping returns nil if the server at addr answers PING and is process pid:
// until our server has bound the port, a server another test started on it
// could answer instead.
func ping(addr string, pid int) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(conn, "PING\r\nINFO server\r\n"); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	// INFO answers a bulk string, "$<length>\r\n<text>\r\n", whose text has
	// a "process_id:<pid>" line.
	line, err = r.ReadString('\n')
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(line, "$"), "\r\n"))
	if err != nil {
		return fmt.Errorf("INFO answered %q", line)
	}
	info := make([]byte, n)
	if _, err := io.ReadFull(r, info); err != nil {
		return err
	}
	if !strings.Contains("\r\n"+string(info), "\r\nprocess_id:"+strconv.Itoa(pid)+"\r\n") {
		return fmt.Errorf("%s is served by another process than %d", addr, pid)
	}
	return nil
}

// logTail returns the last lines the server in dir wrote, to its console and
// to its log file.
func logTail(dir string) string {
	var b strings.Builder
	for _, name := range []string{"console.log", "redis.log"} {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > tailLines {
			lines = lines[len(lines)-tailLines:]
		}
		if text := strings.TrimSpace(strings.Join(lines, "\n")); text != "" {
			fmt.Fprintf(&b, "%s:\n%s\n", name, text)
		}
	}
	if b.Len() == 0 {
		return "(nothing)\n"
	}
	return b.String()
}
