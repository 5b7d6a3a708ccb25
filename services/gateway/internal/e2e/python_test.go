package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
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
	runPerTransport(t, url, dir, []string{"JWT_SECRET=" + jwtSecret, "PYTHONDONTWRITEBYTECODE=1"},
		debianPython, "-m", "unittest", "-v", "contract_test")
}
