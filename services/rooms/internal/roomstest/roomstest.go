// Package roomstest runs the real rooms service binary for tests: it builds
// cmd/rooms, starts it on loopback ports chosen by the kernel, and reads the
// addresses it serves on from its JSON log.
package roomstest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Tokens the processes started here accept.
const (
	ServiceToken = "test-service-token"
	AdminToken   = "test-admin-token"
)

// Build compiles cmd/rooms into a temporary directory and returns its path.
func Build(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	pkg := filepath.Join(filepath.Dir(file), "..", "..", "cmd", "rooms")
	bin := filepath.Join(t.TempDir(), "rooms")
	cmd := exec.Command("go", "build", "-race", "-o", bin, ".")
	cmd.Dir = pkg
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/rooms: %v\n%s", err, out)
	}
	return bin
}

// Process is a running rooms service.
type Process struct {
	GRPCAddr    string
	MetricsAddr string
	cmd         *exec.Cmd
	exited      chan struct{}
	mu          sync.Mutex
	log         bytes.Buffer
}

// Start runs bin with dataDir, loopback listeners and the test tokens, plus
// extra flags, and returns once it serves. The process is killed at the end of
// the test if still running.
func Start(t testing.TB, bin, dataDir string, extra ...string) *Process {
	t.Helper()
	args := append([]string{
		"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--data-dir", dataDir, "--log-format", "json",
		"--service-token", ServiceToken, "--admin-token", AdminToken,
	}, extra...)
	p := &Process{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start rooms: %v", err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(p.exited)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.log.Write(sc.Bytes())
			p.log.WriteByte('\n')
			p.mu.Unlock()
			var line struct {
				Msg         string `json:"msg"`
				GRPCAddr    string `json:"grpc_addr"`
				MetricsAddr string `json:"metrics_addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "rooms service serving" {
				p.GRPCAddr, p.MetricsAddr = line.GRPCAddr, line.MetricsAddr
				close(ready)
			}
		}
		p.cmd.Wait()
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("rooms service log:\n%s", p.Log())
		}
	})
	select {
	case <-ready:
	case <-p.exited:
		t.Fatalf("rooms service exited before serving:\n%s", p.Log())
	case <-time.After(30 * time.Second):
		t.Fatalf("rooms service did not start serving:\n%s", p.Log())
	}
	return p
}

// Log returns what the process has logged so far.
func (p *Process) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *Process) Kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// Terminate sends SIGTERM and waits for the process to exit, returning its
// exit code.
func (p *Process) Terminate(t testing.TB) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("rooms service did not exit after SIGTERM:\n%s", p.Log())
	}
	return p.cmd.ProcessState.ExitCode()
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }
