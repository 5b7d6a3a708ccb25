package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley/services/rooms/internal/roomstest"
)

// TestAdminCookbook runs every grpcurl command of docs/admin.md, in order,
// against a real rooms service started with the dev tokens of `make run`, so
// the operator cookbook cannot drift from what the service does.
//
// The doc drives the test with HTML comments on the line(s) right above a
// ```sh fence:
//
//	<!-- expect: CODE -->     every command of the block must fail (non-zero
//	                          exit) with CODE in its output
//	<!-- while: previous -->  the block runs while the previous block's
//	                          command (a Subscribe with -v and -max-time) is
//	                          still streaming; that command must then show
//	                          every payload this block published
//
// docs/admin.md is outside this module, so go test's cache does not see
// edits to it: run with -count=1 after changing the doc (make test does).
func TestAdminCookbook(t *testing.T) {
	root := repoRoot(t)
	docPath := filepath.Join(root, "docs", "admin.md")
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("read the cookbook: %v", err)
	}
	blocks, err := parseCookbook(string(doc))
	if err != nil {
		t.Fatalf("%s: %v", docPath, err)
	}
	if len(blocks) == 0 {
		t.Fatalf("%s has no ```sh block with a grpcurl command", docPath)
	}
	grpcurl := findTool(t, "grpcurl", os.Getenv("PARLEY_GRPCURL"), filepath.Join(root, ".tmp", "bin", "grpcurl"))
	findTool(t, "bash", "", "")

	bin := roomstest.Build(t)
	p := roomstest.Start(t, bin, t.TempDir(), "--service-token", docServiceToken, "--admin-token", docAdminToken)
	r := &cookbookRunner{t: t, grpcurl: grpcurl, addr: p.GRPCAddr}

	var results []*cmdResult
	for i := 0; i < len(blocks); i++ {
		b := blocks[i]
		if b.background {
			results = append(results, r.runWhile(b, blocks[i+1])...)
			i++
			continue
		}
		for _, c := range b.cmds {
			results = append(results, r.run(b, c))
		}
	}
	checkOutputs(t, results)
}

// What the doc's commands are written against: `make run`.
const (
	docAddr         = "localhost:50051"
	docServiceToken = "dev-service-token"
	docAdminToken   = "dev-admin-token"
	// grpcurl -v prints this when response headers arrive, which Subscribe
	// sends once the subscription is registered.
	registeredText = "Response headers received"
)

const (
	commandTimeout    = 30 * time.Second // one foreground command
	registerTimeout   = 30 * time.Second // a background Subscribe to get registered
	backgroundTimeout = 2 * time.Minute  // a background command to end by its -max-time
)

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("runtime.Caller failed")
	}
	// services/rooms/internal/app -> repository root.
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
}

// findTool returns the tool named by env (if set), else pinned (if it
// exists), else the one on PATH. A missing tool fails the test on CI and
// skips it elsewhere.
func findTool(t *testing.T, name, env, pinned string) string {
	t.Helper()
	if env != "" {
		if _, err := os.Stat(env); err != nil {
			t.Fatalf("%s from the environment: %v", name, err)
		}
		return env
	}
	if pinned != "" {
		if fi, err := os.Stat(pinned); err == nil && !fi.IsDir() {
			return pinned
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found", name)
	if name == "grpcurl" {
		msg += ": run `make tools` (installs .tmp/bin/grpcurl) or set PARLEY_GRPCURL"
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// docBlock is one ```sh block of the cookbook holding grpcurl commands.
type docBlock struct {
	line       int    // line of the opening fence, 1-based
	expect     string // from <!-- expect: TEXT -->
	whilePrev  bool   // from <!-- while: previous -->
	background bool   // the next block is marked while: previous
	cmds       []string
}

var markerRE = regexp.MustCompile(`^<!--\s*([A-Za-z-]+)\s*:\s*(.*?)\s*-->$`)

// parseCookbook returns the ```sh blocks of doc that contain grpcurl
// commands, with their backslash-continued lines joined and the markers of
// the HTML comments right above their fence.
func parseCookbook(doc string) ([]*docBlock, error) {
	lines := strings.Split(doc, "\n")
	var (
		blocks  []*docBlock
		pending []string // markers seen right above the current line, "key: value"
		cur     *docBlock
	)
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if m := markerRE.FindStringSubmatch(line); m != nil {
			pending = append(pending, m[1]+": "+m[2])
			continue
		}
		if !strings.HasPrefix(line, "```") {
			pending = nil
			continue
		}
		lang := strings.TrimPrefix(line, "```")
		start := i + 1
		body, end := []string(nil), -1
		for j := i + 1; j < len(lines); j++ {
			if strings.TrimSpace(lines[j]) == "```" {
				end = j
				break
			}
			body = append(body, lines[j])
		}
		if end < 0 {
			return nil, fmt.Errorf("line %d: fence never closed", start)
		}
		i = end
		markers := pending
		pending = nil
		if lang != "sh" {
			if len(markers) > 0 {
				return nil, fmt.Errorf("line %d: markers %q above a ```%s block; only ```sh blocks are run", start, markers, lang)
			}
			continue
		}
		cur = &docBlock{line: start}
		for _, c := range joinContinuations(body) {
			if c = strings.TrimSpace(c); strings.HasPrefix(c, "grpcurl ") {
				cur.cmds = append(cur.cmds, c)
			}
		}
		for _, m := range markers {
			key, val, _ := strings.Cut(m, ": ")
			switch {
			case key == "expect" && val != "":
				cur.expect = val
			case key == "while" && val == "previous":
				cur.whilePrev = true
			default:
				return nil, fmt.Errorf("line %d: unknown marker <!-- %s -->", start, m)
			}
		}
		if len(cur.cmds) == 0 {
			if len(markers) > 0 {
				return nil, fmt.Errorf("line %d: markers %q above a block with no grpcurl command", start, markers)
			}
			continue
		}
		if cur.whilePrev {
			if len(blocks) == 0 {
				return nil, fmt.Errorf("line %d: while: previous, but no grpcurl block comes before", start)
			}
			prev := blocks[len(blocks)-1]
			if prev.whilePrev || prev.background {
				return nil, fmt.Errorf("line %d: while: previous cannot chain", start)
			}
			if len(prev.cmds) != 1 {
				return nil, fmt.Errorf("line %d: the block a while: previous block runs beside must hold exactly one command, has %d", prev.line, len(prev.cmds))
			}
			if !strings.Contains(prev.cmds[0], "-max-time") || !strings.Contains(prev.cmds[0], " -v ") {
				return nil, fmt.Errorf("line %d: a command run in the background needs -v (to show when it is registered) and -max-time (to end by itself)", prev.line)
			}
			prev.background = true
		}
		blocks = append(blocks, cur)
	}
	return blocks, nil
}

// joinContinuations joins lines ending in a backslash with the next one.
func joinContinuations(lines []string) []string {
	var out []string
	var acc strings.Builder
	for _, l := range lines {
		if acc.Len() > 0 {
			l = strings.TrimLeft(l, " \t")
		}
		if rest, ok := strings.CutSuffix(strings.TrimRight(l, " \t"), `\`); ok {
			acc.WriteString(strings.TrimRight(rest, " \t"))
			acc.WriteString(" ")
			continue
		}
		acc.WriteString(l)
		out = append(out, acc.String())
		acc.Reset()
	}
	if acc.Len() > 0 {
		out = append(out, acc.String())
	}
	return out
}

type cookbookRunner struct {
	t       *testing.T
	grpcurl string
	addr    string
}

// cmdResult is one command as the doc shows it and what running it gave.
type cmdResult struct {
	block *docBlock
	cmd   string
	out   string
	err   error
}

// shell turns a doc command into what bash runs: the same text, with grpcurl
// resolved and the doc's address replaced by the test service's.
func (r *cookbookRunner) shell(cmd string) string {
	s := shellQuote(r.grpcurl) + strings.TrimPrefix(cmd, "grpcurl")
	return strings.ReplaceAll(s, docAddr, r.addr)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (r *cookbookRunner) command(ctx context.Context, cmd string) (*exec.Cmd, *notifyBuffer) {
	c := exec.CommandContext(ctx, "bash", "-c", r.shell(cmd))
	// Own process group, so that a timeout kills grpcurl too, not only bash.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = 5 * time.Second
	out := newNotifyBuffer()
	c.Stdout, c.Stderr = out, out
	return c, out
}

// run runs one command to its end and checks its exit status.
func (r *cookbookRunner) run(b *docBlock, cmd string) *cmdResult {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.t.Context(), commandTimeout)
	defer cancel()
	c, out := r.command(ctx, cmd)
	err := c.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("did not finish within %v: %w", commandTimeout, err)
	}
	res := &cmdResult{block: b, cmd: cmd, out: out.String(), err: err}
	r.check(res)
	return res
}

// runWhile starts bg's command, waits until its subscription is registered,
// runs fg's commands, waits for bg's command to end by its -max-time, and
// checks that it received every payload fg published.
func (r *cookbookRunner) runWhile(bg, fg *docBlock) []*cmdResult {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.t.Context(), backgroundTimeout)
	defer cancel()
	cmd := bg.cmds[0]
	c, out := r.command(ctx, cmd)
	if err := c.Start(); err != nil {
		r.t.Fatalf("line %d: start %s: %v", bg.line, cmd, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = c.Wait()
		close(exited)
	}()
	defer func() { cancel(); <-exited }()

	deadline := time.NewTimer(registerTimeout)
	defer deadline.Stop()
	for !strings.Contains(out.String(), registeredText) {
		select {
		case <-out.wrote:
		case <-exited:
			r.t.Fatalf("line %d: %s\nended before the subscription was registered (%v):\n%s", bg.line, cmd, waitErr, out)
		case <-deadline.C:
			r.t.Fatalf("line %d: %s\nno %q within %v:\n%s", bg.line, cmd, registeredText, registerTimeout, out)
		}
	}

	var results []*cmdResult
	var payloads []string
	for _, fc := range fg.cmds {
		results = append(results, r.run(fg, fc))
		if p, ok := publishedPayload(fc); ok {
			payloads = append(payloads, p)
		}
	}
	if len(payloads) == 0 {
		r.t.Errorf("line %d: a while: previous block should publish a payload for the subscription to show", fg.line)
	}

	select {
	case <-exited:
	case <-ctx.Done():
		<-exited
	}
	res := &cmdResult{block: bg, cmd: cmd, out: out.String(), err: waitErr}
	if ctx.Err() != nil {
		res.err = fmt.Errorf("did not end by its -max-time within %v: %w", backgroundTimeout, waitErr)
	}
	r.check(res)
	for _, p := range payloads {
		if !strings.Contains(res.out, p) {
			r.t.Errorf("line %d: %s\nshould show the payload %s published while it ran", bg.line, cmd, p)
		}
	}
	return append([]*cmdResult{res}, results...)
}

// check logs a command's output and checks its exit status against the doc.
func (r *cookbookRunner) check(res *cmdResult) {
	r.t.Helper()
	r.t.Logf("line %d: $ %s\n%s", res.block.line, res.cmd, res.out)
	var exit *exec.ExitError
	switch {
	case res.block.expect == "" && res.err != nil:
		r.t.Errorf("line %d: %s\nfailed: %v\n%s", res.block.line, res.cmd, res.err, res.out)
	case res.block.expect != "" && !errors.As(res.err, &exit):
		r.t.Errorf("line %d: %s\nshould fail with %s, got: %v\n%s", res.block.line, res.cmd, res.block.expect, res.err, res.out)
	case res.block.expect != "" && !strings.Contains(res.out, res.block.expect):
		r.t.Errorf("line %d: %s\nshould fail with %s, got:\n%s", res.block.line, res.cmd, res.block.expect, res.out)
	}
}

var dataRE = regexp.MustCompile(`-d '([^']*)'`)

// publishedPayload returns the payload a Publish command sends, as grpcurl
// shows it inside a JSON string.
func publishedPayload(cmd string) (string, bool) {
	m := dataRE.FindStringSubmatch(cmd)
	if !strings.Contains(cmd, "/Publish") || m == nil {
		return "", false
	}
	var req struct {
		Payload string `json:"payload"`
	}
	if json.Unmarshal([]byte(m[1]), &req) != nil || req.Payload == "" {
		return "", false
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(req.Payload) != nil {
		return "", false
	}
	return strings.Trim(strings.TrimSpace(b.String()), `"`), true
}

// checkOutputs checks that a few outputs say what the doc shows they say.
func checkOutputs(t *testing.T, results []*cmdResult) {
	t.Helper()
	has := func(parts ...string) func(string) bool {
		return func(cmd string) bool {
			for _, p := range parts {
				if !strings.Contains(cmd, p) {
					return false
				}
			}
			return true
		}
	}
	checks := []struct {
		what  string
		match func(cmd string) bool
		want  []string
	}{
		{"listing the services", func(c string) bool { return strings.HasSuffix(c, docAddr+" list") },
			[]string{"parley.rooms.v1.RoomsService", "parley.rooms.v1.AdminService", "grpc.health.v1.Health"}},
		{"describing RoomsService", func(c string) bool { return strings.HasSuffix(c, "describe parley.rooms.v1.RoomsService") },
			[]string{"rpc Publish", "returns ( stream .parley.rooms.v1.SubscribeResponse )"}},
		{"describing PublishRequest", func(c string) bool { return strings.HasSuffix(c, "describe parley.rooms.v1.PublishRequest") },
			[]string{"string client_message_id = 5"}},
		{"the health check", has("grpc.health.v1.Health/Check"), []string{`"status": "SERVING"`}},
		{"creating a room with options", has("RoomsService/CreateRoom", "history_max_messages"), []string{`"historyMaxMessages":`}},
		{"joining a room", has("RoomsService/JoinRoom"), []string{`"joined": true`}},
		{"listing members", has("RoomsService/ListMembers"), []string{`"members": [`}},
		{"reading history", has("RoomsService/GetHistory"), []string{`"messages": [`}},
		{"the stats", has("AdminService/GetStats", docAdminToken), []string{`"rooms":`, `"messages":`}},
		{"purging history", has("AdminService/PurgeHistory", docAdminToken), []string{`"purged":`}},
	}
	for _, c := range checks {
		n := 0
		for _, res := range results {
			if res.block.expect != "" || !c.match(res.cmd) {
				continue
			}
			n++
			for _, w := range c.want {
				if !strings.Contains(res.out, w) {
					t.Errorf("line %d: %s\noutput of %s should contain %s:\n%s", res.block.line, res.cmd, c.what, w, res.out)
				}
			}
		}
		if n == 0 {
			t.Errorf("the cookbook no longer shows %s", c.what)
		}
	}
	checkIdempotentPublish(t, results)
}

// checkIdempotentPublish checks that a Publish with a client_message_id shown
// more than once returns the first offset again, with duplicate set.
func checkIdempotentPublish(t *testing.T, results []*cmdResult) {
	t.Helper()
	type publishResponse struct {
		Offset    string `json:"offset"`
		Duplicate bool   `json:"duplicate"`
	}
	first := map[string]publishResponse{}
	retries := 0
	for _, res := range results {
		if res.block.expect != "" || res.err != nil || !strings.Contains(res.cmd, "RoomsService/Publish") || !strings.Contains(res.cmd, "client_message_id") {
			continue
		}
		var resp publishResponse
		if err := json.Unmarshal([]byte(res.out), &resp); err != nil {
			t.Errorf("line %d: %s\noutput is not a PublishResponse: %v\n%s", res.block.line, res.cmd, err, res.out)
			continue
		}
		f, seen := first[res.cmd]
		if !seen {
			if resp.Duplicate {
				t.Errorf("line %d: %s\nfirst publish with this client_message_id says duplicate:\n%s", res.block.line, res.cmd, res.out)
			}
			first[res.cmd] = resp
			continue
		}
		retries++
		if !resp.Duplicate || resp.Offset != f.Offset {
			t.Errorf("line %d: %s\nretry should return offset %s with \"duplicate\": true, got:\n%s", res.block.line, res.cmd, f.Offset, res.out)
		}
	}
	if retries == 0 {
		t.Error("the cookbook no longer shows a retried publish with a client_message_id")
	}
}

// notifyBuffer is a goroutine-safe output buffer that signals each write.
type notifyBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func newNotifyBuffer() *notifyBuffer { return &notifyBuffer{wrote: make(chan struct{}, 1)} }

func (b *notifyBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	n, err := b.buf.Write(p)
	b.mu.Unlock()
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func (b *notifyBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
