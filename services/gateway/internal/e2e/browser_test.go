package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "browser.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GATEWAY_URL="+url, "JWT_SECRET="+jwtSecret, "CHROMIUM="+chromium,
		"SCREENSHOT_DIR="+filepath.Join(dir, "output", "screenshots"))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	lines := bufio.NewScanner(stdout)
	expect := func(want string) {
		t.Helper()
		for lines.Scan() {
			line := lines.Text()
			t.Logf("browser: %s", line)
			if strings.HasPrefix(line, "FAIL") {
				t.Fatalf("browser: %s", line)
			}
			if line == want {
				return
			}
		}
		t.Fatalf("browser script ended before %s", want)
	}
	for _, step := range []string{"CHATTED", "PRESENCE", "HISTORY", "RESTART"} {
		expect(step)
	}
	gw.terminate(t)
	expect("OFFLINE")
	for i := 1; i <= 3; i++ {
		publish(fmt.Sprintf("sent while you were away %d", i))
	}
	s.gateway(addr, args...)
	io.WriteString(stdin, "go\n")
	expect("RECOVERED")
	expect("DONE")
}
