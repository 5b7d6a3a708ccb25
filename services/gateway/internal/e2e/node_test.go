package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runPerTransport runs a client suite, the command argv in dir, against the
// gateway at url, once per transport (TRANSPORTS), with env added to its
// environment; the suite fails the subtest by exiting non-zero.
func runPerTransport(t *testing.T, url, dir string, env []string, argv ...string) {
	t.Helper()
	for _, transport := range []string{"websocket", "polling"} {
		t.Run(transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
			cmd.Dir = dir
			cmd.Env = append(append(os.Environ(), "GATEWAY_URL="+url, "TRANSPORTS="+transport), env...)
			out, err := cmd.CombinedOutput()
			t.Logf("%s (%s):\n%s", strings.Join(argv, " "), transport, out)
			if err != nil {
				t.Fatalf("the suite failed over %s: %v", transport, err)
			}
		})
	}
}

// TestNodeClientContract runs the npm socket.io-client contract suite
// (services/gateway/test/node) against a real gateway, once per transport.
func TestNodeClientContract(t *testing.T) {
	dir, node := nodeDir(t)
	s := startStack(t)
	_, url := s.gateway("127.0.0.1:0")
	// --test-force-exit: a polling client can leave a request open after
	// close, which would hold the finished test process for a while.
	runPerTransport(t, url, dir, []string{"JWT_SECRET=" + jwtSecret}, node, "--test", "--test-force-exit", "--test-reporter=spec")
}

// TestV2ClientClassicChat runs the classic chat with the npm
// socket.io-client 2.x (services/gateway/test/node/v2client.mjs) against a
// gateway started with --allow-eio3, once per transport.
func TestV2ClientClassicChat(t *testing.T) {
	dir, node := nodeDir(t)
	s := startStack(t)
	_, url := s.gateway("127.0.0.1:0", "--allow-eio3")
	runPerTransport(t, url, dir, nil, node, "--test", "--test-force-exit", "--test-reporter=spec", "v2client.mjs")
}
