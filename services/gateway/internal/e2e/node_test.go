package e2e

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestNodeClientContract runs the npm socket.io-client contract suite
// (services/gateway/test/node) against a real gateway, once per transport.
func TestNodeClientContract(t *testing.T) {
	dir, node := nodeDir(t)
	s := startStack(t)
	_, url := s.gateway("127.0.0.1:0")
	for _, transport := range []string{"websocket", "polling"} {
		t.Run(transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			// --test-force-exit: a polling client can leave a request open after
			// close, which would hold the finished test process for a while.
			cmd := exec.CommandContext(ctx, node, "--test", "--test-force-exit", "--test-reporter=spec")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GATEWAY_URL="+url, "JWT_SECRET="+jwtSecret, "TRANSPORTS="+transport)
			out, err := cmd.CombinedOutput()
			t.Logf("node --test (%s):\n%s", transport, out)
			if err != nil {
				t.Fatalf("node contract suite failed over %s: %v", transport, err)
			}
		})
	}
}

// TestV2ClientClassicChat runs the classic chat with the npm
// socket.io-client 2.x (services/gateway/test/node/v2client.mjs) against a
// gateway started with --allow-eio3, once per transport.
func TestV2ClientClassicChat(t *testing.T) {
	dir, node := nodeDir(t)
	s := startStack(t)
	_, url := s.gateway("127.0.0.1:0", "--allow-eio3")
	for _, transport := range []string{"websocket", "polling"} {
		t.Run(transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "--test", "--test-force-exit", "--test-reporter=spec", "v2client.mjs")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GATEWAY_URL="+url, "TRANSPORTS="+transport)
			out, err := cmd.CombinedOutput()
			t.Logf("node --test v2client.mjs (%s):\n%s", transport, out)
			if err != nil {
				t.Fatalf("socket.io-client 2.x failed over %s: %v", transport, err)
			}
		})
	}
}
