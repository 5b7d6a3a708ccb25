package cli_test

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/parleyhq/parley/services/kit/proctest"
)

// testservice is a binary built on Main.
var testservice = proctest.BuildOnce(map[string]string{"testservice": "github.com/parleyhq/parley/services/kit/internal/testservice"})

func TestMainExitCode(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "help", args: []string{"--help"}, wantCode: 0, wantStdout: "Usage: testservice [flags]"},
		{name: "usage error", args: []string{"extra"}, wantCode: 1, wantStderr: "testservice: unexpected arguments: [\"extra\"]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(testservice(t)["testservice"], tt.args...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			var exit *exec.ExitError
			if err := cmd.Run(); err != nil && !errors.As(err, &exit) {
				t.Fatal(err)
			}
			if code := cmd.ProcessState.ExitCode(); code != tt.wantCode {
				t.Errorf("exit code %d, want %d", code, tt.wantCode)
			}
			if !strings.HasPrefix(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q, want it to start with %q", stdout.String(), tt.wantStdout)
			}
			if stderr.String() != tt.wantStderr {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

// TestMainSignal checks that SIGTERM ends run's context: run returning nil
// then is a clean exit, an error from its shutdown is not.
func TestMainSignal(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "clean shutdown", wantCode: 0},
		{name: "failed shutdown", args: []string{"--stop-error", "store not closed"}, wantCode: 1, wantStderr: "testservice: store not closed\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := proctest.Start(t, proctest.Cmd{
				Name:  "testservice",
				Path:  testservice(t)["testservice"],
				Args:  append([]string{"--log-format", "json"}, tt.args...),
				Ready: "testservice serving",
			})
			if code := p.Terminate(t); code != tt.wantCode {
				t.Errorf("exit code after SIGTERM %d, want %d", code, tt.wantCode)
			}
			if !strings.Contains(p.Log(), tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, p.Log())
			}
		})
	}
}
