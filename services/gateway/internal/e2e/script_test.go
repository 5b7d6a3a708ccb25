package e2e

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// script is a Node script of test/node that the test steps through: the
// script prints a line when it reaches a point, and waits for a line on its
// standard input where the test has something to do first.
type script struct {
	t     *testing.T
	stdin io.WriteCloser
	lines *bufio.Scanner
}

// runScript starts node on name in dir with extra environment, for at most
// limit.
func runScript(t *testing.T, dir, node, name string, limit time.Duration, env ...string) *script {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	cmd := exec.CommandContext(ctx, node, name)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
		cancel()
	})
	return &script{t: t, stdin: stdin, lines: bufio.NewScanner(stdout)}
}

// expect reads lines until one starts with prefix and returns the rest of it.
// A line starting with FAIL fails the test.
func (s *script) expect(prefix string) string {
	s.t.Helper()
	for s.lines.Scan() {
		line := s.lines.Text()
		s.t.Logf("script: %s", line)
		if strings.HasPrefix(line, "FAIL") {
			s.t.Fatalf("script: %s", line)
		}
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSpace(rest)
		}
	}
	s.t.Fatalf("script ended before %q", prefix)
	return ""
}

// next lets the script go on past its current wait.
func (s *script) next() {
	s.nextLine("go")
}

// nextLine sends the script a command line.
func (s *script) nextLine(line string) {
	io.WriteString(s.stdin, line+"\n")
}
