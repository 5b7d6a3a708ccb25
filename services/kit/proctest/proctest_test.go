package proctest

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

var binaries = BuildOnce(map[string]string{"testservice": "github.com/parleyhq/parley/services/kit/internal/testservice"})

func testservice(tb testing.TB, args ...string) Cmd {
	return Cmd{
		Name:  "testservice",
		Path:  binaries(tb)["testservice"],
		Args:  append([]string{"--log-format", "json"}, args...),
		Ready: "testservice serving",
	}
}

func TestStartAndStop(t *testing.T) {
	tests := []struct {
		name     string
		stop     func(*testing.T, *Process) int
		wantCode int
		stopped  bool // whether the process got to log its shutdown
	}{
		{"terminate", func(t *testing.T, p *Process) int { return p.Terminate(t) }, 0, true},
		{"kill", func(t *testing.T, p *Process) int { p.Kill(); return p.cmd.ProcessState.ExitCode() }, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, line := Start(t, testservice(t))
			addr, _ := line["addr"].(string)
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("ready line %v: %v", line, err)
			}
			conn.Close()
			if !strings.Contains(p.Log(), `"msg":"testservice serving"`) {
				t.Errorf("log lacks the ready line:\n%s", p.Log())
			}
			select {
			case <-p.Exited():
				t.Fatal("Exited closed while the process runs")
			default:
			}

			if code := tt.stop(t, p); code != tt.wantCode {
				t.Errorf("exit code %d, want %d", code, tt.wantCode)
			}
			select {
			case <-p.Exited():
			default:
				t.Error("Exited not closed after the process ended")
			}
			if got := strings.Contains(p.Log(), `"msg":"testservice stopping"`); got != tt.stopped {
				t.Errorf("shutdown logged: %v, want %v; log:\n%s", got, tt.stopped, p.Log())
			}
		})
	}
}

// fakeTB records what Start reports on failure; its Fatal stops the calling
// goroutine as the testing package's does.
type fakeTB struct {
	testing.TB
	fatal    string
	logs     []string
	cleanups []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Failed() bool { return f.fatal != "" }

func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func (f *fakeTB) Logf(format string, args ...any) {
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls fn as a test would be, then the cleanups fn registered.
func (f *fakeTB) run(fn func(testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestStartFailure(t *testing.T) {
	neverReady := testservice(t)
	neverReady.Ready = "never logged"
	neverReady.Wait = 500 * time.Millisecond
	tests := []struct {
		name      string
		cmd       Cmd
		wantFatal []string
	}{
		{"exits before serving", testservice(t, "--no-such-flag"), []string{"testservice exited before serving", "testservice: flag provided but not defined: -no-such-flag"}},
		{"not ready in time", neverReady, []string{"testservice did not start serving", `"msg":"testservice serving"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p *Process
			f := &fakeTB{}
			f.run(func(tb testing.TB) { p, _ = Start(tb, tt.cmd) })
			if p != nil {
				t.Fatal("Start returned a process")
			}
			for _, want := range tt.wantFatal {
				if !strings.Contains(f.fatal, want) {
					t.Errorf("failure %q lacks %q", f.fatal, want)
				}
			}
			if len(f.logs) != 1 || !strings.HasPrefix(f.logs[0], "testservice log:\n") {
				t.Errorf("cleanup logged %q, want the process log", f.logs)
			}
		})
	}
}
