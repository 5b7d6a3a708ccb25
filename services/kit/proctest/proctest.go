// Package proctest runs real service binaries in tests: it builds a main
// package with the race detector, starts the binary, captures its JSON log
// from stderr and waits for the line that says it serves, which carries the
// addresses it listens on.
package proctest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles the main package pkg (an import path, resolved from the
// test's working directory, so in its module or the workspace) into a
// temporary directory of t and returns the binary's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), path.Base(pkg))
	if err := build(pkg, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// BuildOnce returns a function that compiles the main packages pkgs (name to
// import path, as for Build) the first time it is called in a test binary run
// and returns their paths by name, for tests that start many processes.
func BuildOnce(pkgs map[string]string) func(testing.TB) map[string]string {
	bins := sync.OnceValues(func() (map[string]string, error) {
		// Not removed: the binaries outlive every test that uses them.
		dir, err := os.MkdirTemp("", "parley-proctest-bin")
		if err != nil {
			return nil, err
		}
		bins := map[string]string{}
		for name, pkg := range pkgs {
			bins[name] = filepath.Join(dir, name)
			if err := build(pkg, bins[name]); err != nil {
				return nil, err
			}
		}
		return bins, nil
	})
	return func(t testing.TB) map[string]string {
		t.Helper()
		b, err := bins()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// build compiles pkg with the race detector, unless PARLEY_RACE is "off":
// load and soak runs measure the binaries as they ship.
func build(pkg, bin string) error {
	args := []string{"build", "-race", "-o", bin, pkg}
	if os.Getenv("PARLEY_RACE") == "off" {
		args = slices.Delete(args, 1, 2)
	}
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return nil
}

// Cmd is a binary to start and how to tell that it serves.
type Cmd struct {
	// Name names the process in failure messages, e.g. "rooms service".
	Name string
	Path string
	Args []string
	// Ready is the msg of the JSON log line the process writes once it
	// serves.
	Ready string
	// Wait bounds how long the process may take to write that line; zero
	// means a minute.
	Wait time.Duration
}

// Process is a running binary whose stderr is captured.
type Process struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	mu     sync.Mutex
	log    bytes.Buffer
}

// Start runs c and returns once the process has logged its Ready line,
// with that line's fields. It fails t if the process exits first or takes
// longer than c.Wait. At the end of the test the process is killed, and its
// log is printed if the test failed.
func Start(t testing.TB, c Cmd) (*Process, map[string]any) {
	t.Helper()
	p := &Process{name: c.Name, cmd: exec.Command(c.Path, c.Args...), exited: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", c.Name, err)
	}
	ready := make(chan map[string]any, 1)
	go func() {
		defer close(p.exited)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			p.mu.Lock()
			p.log.Write(sc.Bytes())
			p.log.WriteByte('\n')
			p.mu.Unlock()
			var line map[string]any
			if !sent && json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == c.Ready {
				ready <- line
				sent = true
			}
		}
		p.cmd.Wait()
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("%s log:\n%s", c.Name, p.Log())
		}
	})
	wait := c.Wait
	if wait == 0 {
		wait = time.Minute
	}
	select {
	case line := <-ready:
		return p, line
	case <-p.exited:
		t.Fatalf("%s exited before serving:\n%s", c.Name, p.Log())
	case <-time.After(wait):
		t.Fatalf("%s did not start serving:\n%s", c.Name, p.Log())
	}
	return nil, nil
}

// Log returns what the process has written to stderr so far.
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
		t.Fatalf("%s did not exit after SIGTERM:\n%s", p.name, p.Log())
	}
	return p.cmd.ProcessState.ExitCode()
}

// Signal sends sig to the process: SIGSTOP and SIGCONT freeze and thaw it,
// as a stalled machine or a partition would.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }
