// Package server starts the servers make bench compares, tells when they
// serve, measures their CPU and memory from /proc, and stops them.
package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Options are what every server start shares.
type Options struct {
	Root   string // the repository's root
	LogDir string // each process's output goes to a file here
	// Parley's extra flags, appended to the benchmark's own (so they win).
	GatewayFlags, RoomsFlags []string
}

// Server is a running server: one or more processes.
type Server struct {
	Name string
	Addr string // host:port of socket.io
	// PprofAddrs are the profiling addresses of the processes that serve
	// them, by process name.
	PprofAddrs map[string]string
	procs      []*proc
	cleanup    func()
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // how it exited, once done
	log  string        // its output file
}

// readyTimeout bounds a server's start: beyond it, it is broken.
const readyTimeout = 60 * time.Second

// startProc starts bin with args, with its soft limit of open files raised to
// the hard limit (os/exec gives children the limit Go found at start, often
// 1024, too few for 5,000 sockets), output to logDir/tag.log.
func startProc(logDir, tag, name string, stdout io.Writer, env []string, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(logDir, tag+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("sh", append([]string{"-c", `ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"`, bin}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = f
	cmd.Stdout = f
	if stdout != nil {
		cmd.Stdout = io.MultiWriter(f, stdout)
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// exitError says how a process that should be running has ended, with the
// end of its output.
func (p *proc) exitError() error {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	lines = lines[max(0, len(lines)-10):]
	return fmt.Errorf("%s exited (%v); the end of %s:\n%s", p.name, p.err, p.log, strings.Join(lines, "\n"))
}

// freePort returns a loopback port nothing listens on at the moment.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartNode starts the reference server, bench/node/server.mjs, and returns
// once it listens.
func StartNode(ctx context.Context, log *slog.Logger, o Options, tag string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	p, err := startProc(o.LogDir, tag+"-node", "node", pw, []string{fmt.Sprintf("PORT=%d", port)},
		"node", filepath.Join(o.Root, "bench", "node", "server.mjs"))
	if err != nil {
		return nil, err
	}
	s := &Server{Name: "node", Addr: fmt.Sprintf("127.0.0.1:%d", port), procs: []*proc{p}, cleanup: func() { pw.Close() }}
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if sc.Text() == "listening" {
				close(listening)
				break
			}
		}
		io.Copy(io.Discard, pr) // the rest is in the log file too
	}()
	if err := s.wait(ctx, func() bool {
		select {
		case <-listening:
			return true
		default:
			return false
		}
	}); err != nil {
		s.Stop(log)
		return nil, err
	}
	return s, nil
}

// StartParley starts the rooms service on a fresh data directory and a
// gateway in front of it, with the limits that would otherwise be measured
// instead of Parley raised, and returns once the gateway is ready.
func StartParley(ctx context.Context, log *slog.Logger, o Options, tag string, pprof bool) (*Server, error) {
	return startParley(ctx, log, o, tag, pprof, storeSQLite)
}

// StartParleyOnRedis starts Parley as StartParley does, but with the rooms
// service on a fresh redis-server (the Debian package's binary, on PATH)
// that appends every write to its log before answering and syncs it every
// second: an acknowledged message survives a crash of Redis, as on SQLite
// it survives one of the rooms service. Redis's CPU and memory count as
// Parley's.
func StartParleyOnRedis(ctx context.Context, log *slog.Logger, o Options, tag string) (*Server, error) {
	return startParley(ctx, log, o, tag, false, storeRedis)
}

// StartParleyOnRedisCluster starts Parley as StartParleyOnRedis does, on a
// Redis Cluster of three primaries instead, each as durable as that
// redis-server; the three count as Parley's.
func StartParleyOnRedisCluster(ctx context.Context, log *slog.Logger, o Options, tag string) (*Server, error) {
	return startParley(ctx, log, o, tag, false, storeCluster)
}

// The rooms service's stores.
const (
	storeSQLite = iota
	storeRedis
	storeCluster
)

func startParley(ctx context.Context, log *slog.Logger, o Options, tag string, pprof bool, store int) (*Server, error) {
	dir, err := os.MkdirTemp("", "parley-bench-")
	if err != nil {
		return nil, err
	}
	s := &Server{Name: "parley", PprofAddrs: map[string]string{}, cleanup: func() { os.RemoveAll(dir) }}
	switch store {
	case storeRedis:
		s.Name = "parley-redis"
	case storeCluster:
		s.Name = "parley-cluster"
	}
	fail := func(err error) (*Server, error) {
		s.Stop(log)
		return nil, err
	}
	var ports [3]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return fail(err)
		}
	}
	roomsAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	s.Addr = fmt.Sprintf("127.0.0.1:%d", ports[2])
	config := filepath.Join(dir, "gateway.json")
	err = os.WriteFile(config, []byte(`{"namespaces":[{"name":"/","default_rooms":["room1"],"create_rooms":true,"empty_room_ttl":"10m"}]}`), 0o600)
	if err != nil {
		return fail(err)
	}
	const token, adminToken = "bench-service-token", "bench-admin-token"
	roomsArgs := []string{
		"--listen", roomsAddr, "--metrics-listen", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"--data-dir", filepath.Join(dir, "data"), "--service-token", token, "--admin-token", adminToken,
		"--log-level", "warn", "--rate-limit", "1e9", "--rate-burst", "1000000000",
	}
	gatewayArgs := []string{
		"--listen", s.Addr, "--rooms-addr", roomsAddr, "--service-token", token, "--config", config,
		"--log-level", "warn", "--web=false",
		"--event-rate", "1000", "--event-burst", "1000", "--create-room-rate", "1000", "--create-room-burst", "1000",
	}
	if pprof {
		for _, a := range []struct {
			name string
			args *[]string
		}{{"rooms", &roomsArgs}, {"gateway", &gatewayArgs}} {
			port, err := freePort()
			if err != nil {
				return fail(err)
			}
			s.PprofAddrs[a.name] = fmt.Sprintf("127.0.0.1:%d", port)
			*a.args = append(*a.args, "--pprof-listen", s.PprofAddrs[a.name])
		}
	}
	if store != storeSQLite {
		start := s.startRedis
		if store == storeCluster {
			start = s.startRedisCluster
		}
		url, err := start(ctx, o, tag, filepath.Join(dir, "redis"))
		if err != nil {
			return fail(err)
		}
		roomsArgs = append(roomsArgs, "--redis-url", url)
	}
	bin := filepath.Join(o.Root, ".tmp", "bin")
	rooms, err := startProc(o.LogDir, tag+"-rooms", "rooms service", nil, nil, filepath.Join(bin, "rooms"), append(roomsArgs, o.RoomsFlags...)...)
	if err != nil {
		return fail(err)
	}
	s.procs = append(s.procs, rooms)
	gateway, err := startProc(o.LogDir, tag+"-gateway", "gateway", nil, nil, filepath.Join(bin, "gateway"), append(gatewayArgs, o.GatewayFlags...)...)
	if err != nil {
		return fail(err)
	}
	s.procs = append(s.procs, gateway)
	healthz := "http://" + s.Addr + "/healthz"
	if err := s.wait(ctx, func() bool {
		resp, err := http.Get(healthz)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		return fail(err)
	}
	return s, nil
}

// wait polls ready until it holds, a process exits, or readyTimeout passes.
func (s *Server) wait(ctx context.Context, ready func() bool) error {
	deadline := time.Now().Add(readyTimeout)
	for !ready() {
		if err := s.Exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v", s.Name, readyTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// Exited returns an error if any of the server's processes has exited.
func (s *Server) Exited() error {
	for _, p := range s.procs {
		select {
		case <-p.done:
			return p.exitError()
		default:
		}
	}
	return nil
}

// Sample is the CPU time and resident memory of a server's processes.
type Sample struct {
	CPU map[string]time.Duration // by process name
	RSS map[string]int64         // bytes, by process name
}

// TotalCPU sums CPU over the processes.
func (s Sample) TotalCPU() time.Duration {
	var t time.Duration
	for _, v := range s.CPU {
		t += v
	}
	return t
}

// TotalRSS sums RSS over the processes.
func (s Sample) TotalRSS() int64 {
	var t int64
	for _, v := range s.RSS {
		t += v
	}
	return t
}

// Sample reads every process's CPU time and RSS from /proc.
func (s *Server) Sample() (Sample, error) {
	out := Sample{CPU: map[string]time.Duration{}, RSS: map[string]int64{}}
	for _, p := range s.procs {
		cpu, err := cpuOf(p.cmd.Process.Pid)
		if err != nil {
			return Sample{}, fmt.Errorf("%s: %w", p.name, err)
		}
		rss, err := rssOf(p.cmd.Process.Pid)
		if err != nil {
			return Sample{}, fmt.Errorf("%s: %w", p.name, err)
		}
		// Processes of one name (a cluster's nodes) count together.
		out.CPU[p.name] += cpu
		out.RSS[p.name] += rss
	}
	return out, nil
}

// stopTimeout is how long a process gets to exit on SIGTERM before SIGKILL.
const stopTimeout = 10 * time.Second

// Stop ends the processes, the last started first (the gateway before the
// rooms service it depends on), and removes what the server wrote.
func (s *Server) Stop(log *slog.Logger) {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			log.Warn("SIGTERM", "process", p.name, "err", err)
		}
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			log.Warn("no exit after SIGTERM: killing it", "process", p.name, "after", stopTimeout)
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	if s.cleanup != nil {
		s.cleanup()
	}
}

// Profile takes a CPU profile of d from each process that serves profiles
// and writes it to dir/<prefix>-<process>.pprof.
func (s *Server) Profile(ctx context.Context, d time.Duration, dir, prefix string) error {
	return s.fetchProfiles(ctx, fmt.Sprintf("profile?seconds=%d", int(d.Seconds())), dir, prefix)
}

// HeapProfile saves each process's heap profile (live objects) into dir as
// prefix-<process>.pprof.
func (s *Server) HeapProfile(ctx context.Context, dir, prefix string) error {
	return s.fetchProfiles(ctx, "heap?gc=1", dir, prefix)
}

func (s *Server) fetchProfiles(ctx context.Context, query, dir, prefix string) error {
	var errs []error
	done := make(chan error)
	for name, addr := range s.PprofAddrs {
		go func() {
			done <- fetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/%s", addr, query),
				filepath.Join(dir, prefix+"-"+name+".pprof"))
		}()
	}
	for range s.PprofAddrs {
		if err := <-done; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func fetchProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
