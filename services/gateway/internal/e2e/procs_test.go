package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	serviceToken = "e2e-service-token"
	adminToken   = "e2e-admin-token"
	jwtSecret    = "e2e-jwt-secret"
)

// repoRoot is the checkout's top directory.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
}

// buildBinaries compiles the rooms service and the gateway once per test
// binary run.
var buildBinaries = sync.OnceValues(func() (map[string]string, error) {
	dir, err := os.MkdirTemp("", "parley-e2e-bin")
	if err != nil {
		return nil, err
	}
	bins := map[string]string{}
	for name, pkg := range map[string]string{"rooms": "./services/rooms/cmd/rooms", "gateway": "./services/gateway/cmd/gateway"} {
		out := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-race", "-o", out, pkg)
		cmd.Dir = repoRoot()
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, &buildError{pkg: pkg, out: string(b), err: err}
		}
		bins[name] = out
	}
	return bins, nil
})

type buildError struct {
	pkg, out string
	err      error
}

func (e *buildError) Error() string { return "go build " + e.pkg + ": " + e.err.Error() + "\n" + e.out }

func binaries(t testing.TB) map[string]string {
	t.Helper()
	bins, err := buildBinaries()
	if err != nil {
		t.Fatal(err)
	}
	return bins
}

// proc is a running binary whose JSON log is captured.
type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	ready  chan map[string]any
	mu     sync.Mutex
	log    bytes.Buffer
}

// startProc runs bin with args and waits for the log line whose msg is
// readyMsg, returning its fields.
func startProc(t testing.TB, name, bin, readyMsg string, args ...string) (*proc, map[string]any) {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), exited: make(chan struct{}), ready: make(chan map[string]any, 1)}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
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
			if !sent && json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == readyMsg {
				p.ready <- line
				sent = true
			}
		}
		p.cmd.Wait()
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("%s log:\n%s", name, p.Log())
		}
	})
	select {
	case line := <-p.ready:
		return p, line
	case <-p.exited:
		t.Fatalf("%s exited before serving:\n%s", name, p.Log())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not start serving:\n%s", name, p.Log())
	}
	return nil, nil
}

func (p *proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// kill ends the process with SIGKILL and waits.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// terminate sends SIGTERM and waits for exit.
func (p *proc) terminate(t testing.TB) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit after SIGTERM", p.name)
	}
}

// stack is a rooms service and the gateways in front of it.
type stack struct {
	t        testing.TB
	roomsDir string
	rooms    *proc
	roomsAdr string
	metrics  string
	config   string
}

// roomsMetric reads one unlabelled metric of the rooms service.
func (s *stack) roomsMetric(t testing.TB, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// testConfig is the namespaces the e2e gateways serve.
const testConfig = `{"namespaces": [
	{"name": "/", "default_rooms": ["room1"], "create_rooms": true},
	{"name": "/secure", "auth": true, "create_rooms": true},
	{"name": "/chat", "auth": true, "default_rooms": ["general"], "create_rooms": true}
]}`

func startStack(t testing.TB) *stack {
	t.Helper()
	bins := binaries(t)
	s := &stack{t: t, roomsDir: t.TempDir()}
	s.config = filepath.Join(t.TempDir(), "gateway.json")
	if err := os.WriteFile(s.config, []byte(testConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	s.rooms, line = startProc(t, "rooms", bins["rooms"], "rooms service serving",
		"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data-dir", s.roomsDir,
		"--log-format", "json", "--log-level", "debug", "--service-token", serviceToken, "--admin-token", adminToken)
	s.roomsAdr = line["grpc_addr"].(string)
	s.metrics = line["metrics_addr"].(string)
	return s
}

// gateway starts a gateway on addr ("127.0.0.1:0" for any port) and returns
// it with its base URL.
func (s *stack) gateway(addr string, extra ...string) (*proc, string) {
	s.t.Helper()
	args := append([]string{
		"--listen", addr, "--rooms-addr", s.roomsAdr, "--service-token", serviceToken,
		"--jwt-secret", jwtSecret, "--config", s.config, "--log-format", "json", "--log-level", "debug",
		"--max-message-bytes", "16384", "--event-rate", "20", "--event-burst", "50",
	}, extra...)
	p, line := startProc(s.t, "gateway", binaries(s.t)["gateway"], "gateway serving", args...)
	return p, "http://" + line["addr"].(string)
}

// freeAddr returns a loopback address with a port that was free a moment ago,
// for a gateway that must come back on the same address after a restart.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
