// Package roomstest runs the real rooms service binary for tests: it builds
// cmd/rooms, starts it on loopback ports chosen by the kernel, and reads the
// addresses it serves on from its JSON log.
package roomstest

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/services/kit/proctest"
)

// Tokens the processes started here accept.
const (
	ServiceToken = "test-service-token"
	AdminToken   = "test-admin-token"
)

// Build compiles cmd/rooms into a temporary directory and returns its path.
func Build(t testing.TB) string {
	t.Helper()
	return proctest.Build(t, "github.com/parleyhq/parley/services/rooms/cmd/rooms")
}

// Process is a running rooms service.
type Process struct {
	*proctest.Process
	GRPCAddr    string
	MetricsAddr string
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
	p, line := proctest.Start(t, proctest.Cmd{
		Name: "rooms service", Path: bin, Args: args,
		Ready: "rooms service serving", Wait: 30 * time.Second,
	})
	grpcAddr, _ := line["grpc_addr"].(string)
	metricsAddr, _ := line["metrics_addr"].(string)
	return &Process{Process: p, GRPCAddr: grpcAddr, MetricsAddr: metricsAddr}
}
