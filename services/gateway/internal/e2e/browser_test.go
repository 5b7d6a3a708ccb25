package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/services/kit/redistest"
)

// TestChatPageInBrowser drives the chat page in headless Chromium
// (test/node/browser.mjs, with playwright-core): two people chat, presence
// and a late joiner's history, then the gateway is restarted while messages
// are published and the pages must recover them, once each. Screenshots of
// each state are kept in services/gateway/test/node/output/screenshots.
func TestChatPageInBrowser(t *testing.T) {
	chatInBrowser(t, startStack(t), nil, "")
}

// TestChatPageAcrossGatewaysOnRedis runs the same pages on the layout of
// make run-cluster: two rooms replicas on Redis, two gateways that reach
// both, and one of the two people on each gateway.
func TestChatPageAcrossGatewaysOnRedis(t *testing.T) {
	replicas := []string{freeAddr(t), freeAddr(t)}
	s := startStack(t, "--listen", replicas[0], "--redis-url", "redis://"+redistest.Start(t))
	s.startReplica(replicas[1])
	reach := []string{"--rooms-addr", strings.Join(replicas, ",")}
	_, second := s.gateway("127.0.0.1:0", append([]string{"--dev-tokens"}, reach...)...)
	chatInBrowser(t, s, reach, second)
}

// chatInBrowser runs browser.mjs against a gateway started with extra
// flags, Bob's page on secondURL if not empty, and restarts that gateway
// when the script asks.
func chatInBrowser(t *testing.T, s *stack, extra []string, secondURL string) {
	dir, node := nodeDir(t)
	chromium := chromiumPath(t)
	addr := freeAddr(t)
	args := append([]string{"--dev-tokens"}, extra...)
	gw, url := s.gateway(addr, args...)
	publish := s.publisher(t, "/chat", "general")

	shots := filepath.Join(dir, "output", "screenshots")
	if secondURL != "" {
		shots = filepath.Join(t.TempDir(), "screenshots") // the kept ones are of one gateway
	}
	sc := runScript(t, dir, node, "browser.mjs", 3*time.Minute,
		"GATEWAY_URL="+url, "GATEWAY_URL_2="+secondURL, "JWT_SECRET="+jwtSecret, "CHROMIUM="+chromium, "SCREENSHOT_DIR="+shots)
	for _, step := range []string{"CHATTED", "PRESENCE", "HISTORY", "RESTART"} {
		sc.expect(step)
	}
	gw.Terminate(t)
	sc.expect("OFFLINE")
	for i := 1; i <= 3; i++ {
		publish(fmt.Sprintf("sent while you were away %d", i))
	}
	s.gateway(addr, args...)
	sc.next()
	sc.expect("RECOVERED")
	sc.expect("DONE")
}

// chromiumPath returns the browser the browser tests drive: $CHROMIUM or
// Debian's. Without it they fail under CI and are skipped elsewhere.
func chromiumPath(t *testing.T) string {
	t.Helper()
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is needed for the browser test: %v (apt-get install chromium)", err)
		}
		t.Skipf("chromium not installed: %v", err)
	}
	return chromium
}
