package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestChatPageInBrowser drives the chat page in headless Chromium
// (test/node/browser.mjs, with playwright-core): two people chat, presence
// and a late joiner's history, then the gateway is restarted while messages
// are published and the pages must recover them, once each. Screenshots of
// each state are kept in services/gateway/test/node/output/screenshots.
func TestChatPageInBrowser(t *testing.T) {
	dir, node := nodeDir(t)
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
	s := startStack(t)
	addr := freeAddr(t)
	args := []string{"--dev-tokens"}
	gw, url := s.gateway(addr, args...)
	publish := s.publisher(t, "/chat", "general")

	sc := runScript(t, dir, node, "browser.mjs", 3*time.Minute,
		"GATEWAY_URL="+url, "JWT_SECRET="+jwtSecret, "CHROMIUM="+chromium,
		"SCREENSHOT_DIR="+filepath.Join(dir, "output", "screenshots"))
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
