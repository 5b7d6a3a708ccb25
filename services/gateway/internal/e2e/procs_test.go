package e2e

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/services/kit/proctest"
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

// binaries builds the rooms service and the gateway once per test binary
// run.
var binaries = proctest.BuildOnce(map[string]string{
	"rooms":   "github.com/parleyhq/parley/services/rooms/cmd/rooms",
	"gateway": "github.com/parleyhq/parley/services/gateway/cmd/gateway",
})

// startProc runs bin with args and waits for the log line whose msg is
// readyMsg, returning its fields.
func startProc(t testing.TB, name, bin, readyMsg string, args ...string) (*proctest.Process, map[string]any) {
	t.Helper()
	return proctest.Start(t, proctest.Cmd{Name: name, Path: bin, Args: args, Ready: readyMsg})
}

// stack is a rooms service and the gateways in front of it.
type stack struct {
	t        testing.TB
	roomsDir string
	roomsArg []string
	rooms    *proctest.Process
	roomsAdr string
	metrics  string
	pprof    string // the rooms service's pprof_addr
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
	{"name": "/chat", "auth": true, "default_rooms": ["general"], "create_rooms": true},
	{"name": "/faults", "create_rooms": true}
]}`

// startStack starts a rooms service, with extra flags if given.
func startStack(t testing.TB, extra ...string) *stack {
	t.Helper()
	bins := binaries(t)
	s := &stack{t: t, roomsDir: t.TempDir()}
	s.config = filepath.Join(t.TempDir(), "gateway.json")
	if err := os.WriteFile(s.config, []byte(testConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	s.roomsArg = append([]string{
		"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data-dir", s.roomsDir,
		"--log-format", "json", "--log-level", "debug", "--service-token", serviceToken, "--admin-token", adminToken,
	}, extra...)
	s.startRooms(bins["rooms"])
	return s
}

func (s *stack) startRooms(bin string) {
	var line map[string]any
	s.rooms, line = startProc(s.t, "rooms", bin, "rooms service serving", s.roomsArg...)
	s.roomsAdr = line["grpc_addr"].(string)
	s.metrics = line["metrics_addr"].(string)
	s.pprof = line["pprof_addr"].(string)
}

// restartRooms stops the rooms service with stop and starts it again on the
// same data; it comes back on the same address only if the stack was started
// with a fixed --listen.
func (s *stack) restartRooms(stop func(*proctest.Process)) {
	s.t.Helper()
	stop(s.rooms)
	s.startRooms(binaries(s.t)["rooms"])
}

// startReplica starts another rooms service with the stack's flags (on
// Redis: a replica of the first), listening on listen.
func (s *stack) startReplica(listen string) *proctest.Process {
	s.t.Helper()
	p, _ := startProc(s.t, "rooms replica", binaries(s.t)["rooms"], "rooms service serving",
		append(slices.Clone(s.roomsArg), "--listen", listen, "--metrics-listen", "127.0.0.1:0")...)
	return p
}

// gateway starts a gateway on addr ("127.0.0.1:0" for any port) and returns
// it with its base URL.
func (s *stack) gateway(addr string, extra ...string) (*proctest.Process, string) {
	s.t.Helper()
	p, line := s.gatewayReady(addr, extra...)
	return p, "http://" + line["addr"].(string)
}

// gatewayReady starts a gateway as gateway does and returns the fields of
// its "gateway serving" log line.
func (s *stack) gatewayReady(addr string, extra ...string) (*proctest.Process, map[string]any) {
	s.t.Helper()
	args := append([]string{
		"--listen", addr, "--rooms-addr", s.roomsAdr, "--service-token", serviceToken,
		"--jwt-secret", jwtSecret, "--config", s.config, "--log-format", "json", "--log-level", "debug",
		"--max-message-bytes", "16384", "--event-rate", "20", "--event-burst", "50",
	}, extra...)
	return startProc(s.t, "gateway", binaries(s.t)["gateway"], "gateway serving", args...)
}

// eventually calls check every 50 ms until it returns nil, and fails t with
// check's last error if that has not happened within limit.
func eventually(t testing.TB, limit time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
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
