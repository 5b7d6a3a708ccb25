package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// debianPython is the interpreter Debian's python3-socketio package installs
// for; another python3 first on PATH would not see it.
const debianPython = "/usr/bin/python3"

// TestPythonClientContract runs the python-socketio contract suite
// (services/gateway/test/python) against a real gateway, once per transport.
func TestPythonClientContract(t *testing.T) {
	dir := filepath.Join(repoRoot(), "services", "gateway", "test", "python")
	if out, err := exec.Command(debianPython, "-c", "import socketio, requests, websocket").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("%s with python3-socketio, python3-requests and python3-websocket is needed (apt-get install them): %v\n%s", debianPython, err, out)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := startStack(t)
	_, url := s.gateway("127.0.0.1:0")
	for _, transport := range []string{"websocket", "polling"} {
		t.Run(transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, debianPython, "-m", "unittest", "-v", "contract_test")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GATEWAY_URL="+url, "JWT_SECRET="+jwtSecret, "TRANSPORTS="+transport,
				"PYTHONDONTWRITEBYTECODE=1")
			out, err := cmd.CombinedOutput()
			t.Logf("python3 -m unittest (%s):\n%s", transport, out)
			if err != nil {
				t.Fatalf("python contract suite failed over %s: %v", transport, err)
			}
		})
	}
}
