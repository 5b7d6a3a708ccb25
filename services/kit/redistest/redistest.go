// Package redistest starts real redis-server processes for tests: each runs
// fresh and empty on a loopback port, and is stopped when the test ends. A
// durable one writes an append-only file and can be killed and restarted on
// it.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	attempts     = 3                // servers started before giving up on finding a free port
	readyTimeout = 10 * time.Second // for a server to answer PING
	stopTimeout  = 5 * time.Second  // from SIGTERM to SIGKILL
	tailLines    = 20               // of the server's log in a failure message

	busOffset      = 10000            // a cluster node listens for the other nodes this far above its port
	portPicks      = 100              // ports tried for one whose cluster bus port is free too
	clusterTimeout = 20 * time.Second // for redis-cli to form a cluster and every node to find it ok

	// A cluster node fails another that has not answered its ping for the
	// node timeout, in milliseconds.
	nodeTimeout = 2000
	// The node timeout while a cluster forms. A node pings every other at
	// least every half node timeout, and the nodes learn of each other from
	// those pings, which redis-cli waits for a second at a time: with
	// nodeTimeout that often takes two to six seconds, with meetTimeout one.
	meetTimeout = 500
)

// errBind is returned by start when the server could not bind its port,
// which another process took after it was picked.
var errBind = errors.New("port already in use")

// Server is a running redis-server.
type Server struct {
	Addr string // "127.0.0.1:port"

	t       testing.TB
	bin     string
	port    int
	dir     string
	durable bool
	extra   []string // more arguments, after the common ones
	conf    string   // a configuration file for the server's first argument, or ""
	cmd     *exec.Cmd
	exited  chan struct{}
}

// Start runs a redis-server on 127.0.0.1 that keeps nothing on disk, waits
// until it answers PING and returns its address, "127.0.0.1:port". The
// server is stopped at the end of the test. If redis-server is not on PATH
// the test is skipped, or fails when CI is "true".
func Start(t testing.TB) string {
	t.Helper()
	return launch(t, false).Addr
}

// StartDurable runs a redis-server whose append-only file is written and
// synced before each write is answered (appendfsync always), so that a write
// it answered survives Kill and Restart.
func StartDurable(t testing.TB) *Server {
	t.Helper()
	return launch(t, true)
}

func launch(t testing.TB, durable bool) *Server {
	t.Helper()
	return launchWith(t, freePort, func(s *Server) error { s.durable = durable; return nil })
}

// need returns the path of program, one of those Debian's redis-server
// package brings, or skips the test without it, failing it instead when CI
// is "true".
func need(t testing.TB, program string) string {
	t.Helper()
	bin, err := exec.LookPath(program)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is needed: %v (.ci/run installs it: apt-get install redis-server)", program, err)
		}
		t.Skipf("%s not installed: %v (apt-get install redis-server)", program, err)
	}
	return bin
}

// launchWith starts a server on a port pick returns, in a directory of its
// own, once prepare has set it up.
func launchWith(t testing.TB, pick func() (int, error), prepare func(*Server) error) *Server {
	t.Helper()
	bin := need(t, "redis-server")
	var last error
	for range attempts {
		port, err := pick()
		if err != nil {
			t.Fatal(err)
		}
		s := &Server{t: t, bin: bin, port: port, dir: t.TempDir(),
			Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		if err := prepare(s); err != nil {
			t.Fatal(err)
		}
		err = s.start()
		if err == nil {
			return s
		}
		if !errors.Is(err, errBind) {
			t.Fatal(err)
		}
		last = err
	}
	t.Fatalf("redis-server found no free port in %d tries, the last: %v", attempts, last)
	return nil
}

// Kill stops the server with SIGKILL and waits for it to exit.
func (s *Server) Kill() {
	s.cmd.Process.Kill()
	<-s.exited
}

// Restart starts the server again, on its address and its data, once it
// has exited (after Kill), and waits until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

// start runs redis-server on s's port and directory and waits for it to
// answer.
func (s *Server) start() error {
	logFile := filepath.Join(s.dir, "redis.log")
	// What the server writes before it opens its log file, such as a
	// configuration error.
	console, err := os.OpenFile(filepath.Join(s.dir, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer console.Close()
	var args []string
	if s.conf != "" {
		args = append(args, s.conf)
	}
	args = append(args,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--logfile", logFile,
		"--protected-mode", "no",
		"--daemonize", "no",
	)
	switch {
	case s.conf != "": // a Sentinel keeps no data
	case s.durable:
		args = append(args, "--save", "", "--appendonly", "yes", "--appendfsync", "always")
	default:
		args = append(args, "--save", "", "--appendonly", "no")
	}
	cmd := exec.Command(s.bin, append(args, s.extra...)...)
	cmd.Stdout, cmd.Stderr = console, console
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	s.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			cmd.Process.Kill()
			<-exited
		}
	})

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-exited:
			log := logTail(s.dir)
			if strings.Contains(log, "Address already in use") {
				return fmt.Errorf("redis-server on %s: %w; its log ends:\n%s", s.Addr, errBind, log)
			}
			return fmt.Errorf("redis-server on %s exited (%v) before answering PING; its log ends:\n%s", s.Addr, cmd.ProcessState, log)
		default:
		}
		err := ping(s.Addr, cmd.Process.Pid)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s did not answer PING within %v (%v); its log ends:\n%s", s.Addr, readyTimeout, err, logTail(s.dir))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a loopback port that nothing listened on a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// clusterPort returns a loopback port that nothing listened on a moment
// ago, nor on the port busOffset above it, where a cluster node listens for
// the other nodes.
func clusterPort() (int, error) {
	for range portPicks {
		port, err := freePort()
		if err != nil {
			return 0, err
		}
		// The kernel hands out ports up to 60999 by default; redis-server
		// refuses one whose bus port would not exist.
		if port+busOffset > 65535 {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+busOffset)))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no loopback port free with the port %d above it in %d tries", busOffset, portPicks)
}

// ping returns nil if the server at addr answers PING and is process pid:
// until our server has bound the port, a server another test started on it
// could answer instead.
func ping(addr string, pid int) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(conn, "PING\r\nINFO server\r\n"); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	// INFO answers a bulk string, "$<length>\r\n<text>\r\n", whose text has
	// a "process_id:<pid>" line.
	line, err = r.ReadString('\n')
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(line, "$"), "\r\n"))
	if err != nil {
		return fmt.Errorf("INFO answered %q", line)
	}
	info := make([]byte, n)
	if _, err := io.ReadFull(r, info); err != nil {
		return err
	}
	if !strings.Contains("\r\n"+string(info), "\r\nprocess_id:"+strconv.Itoa(pid)+"\r\n") {
		return fmt.Errorf("%s is served by another process than %d", addr, pid)
	}
	return nil
}

// logTail returns the last lines the server in dir wrote, to its console and
// to its log file.
func logTail(dir string) string {
	var b strings.Builder
	for _, name := range []string{"console.log", "redis.log"} {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > tailLines {
			lines = lines[len(lines)-tailLines:]
		}
		if text := strings.TrimSpace(strings.Join(lines, "\n")); text != "" {
			fmt.Fprintf(&b, "%s:\n%s\n", name, text)
		}
	}
	if b.Len() == 0 {
		return "(nothing)\n"
	}
	return b.String()
}

// Sentinel is a primary, its replica, and a Sentinel that watches them and
// promotes the replica when the primary is down for half a second.
type Sentinel struct {
	Primary, Replica, Sentinel *Server
}

// masterName is the name the Sentinel knows the primary by.
const masterName = "parley"

// URL reaches the primary through the Sentinel, as go-redis reads it.
func (s *Sentinel) URL() string {
	return "redis://" + s.Sentinel.Addr + "?master_name=" + masterName
}

// StartSentinel starts a primary, a replica of it and a Sentinel, and
// returns once the Sentinel knows the replica.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	primary := launch(t, false)
	host, port, _ := net.SplitHostPort(primary.Addr)
	replica := launchWith(t, freePort, func(s *Server) error {
		s.extra = []string{"--replicaof", host, port}
		return nil
	})
	sentinel := launchWith(t, freePort, func(s *Server) error {
		s.conf = filepath.Join(s.dir, "sentinel.conf")
		s.extra = []string{"--sentinel"}
		return os.WriteFile(s.conf, []byte(fmt.Sprintf(
			"sentinel monitor %s %s %s 1\nsentinel down-after-milliseconds %[1]s 500\nsentinel failover-timeout %[1]s 5000\n",
			masterName, host, port)), 0o600)
	})
	// The Sentinel learns of the replica from the primary, and the replica
	// must have synced before it can be promoted.
	_, replicaPort, _ := net.SplitHostPort(replica.Addr)
	deadline := time.Now().Add(readyTimeout)
	for {
		replicas, err1 := Do(sentinel.Addr, "SENTINEL REPLICAS "+masterName)
		role, err2 := Do(replica.Addr, "INFO replication")
		if err1 == nil && err2 == nil && strings.Contains(replicas, replicaPort) && strings.Contains(role, "master_link_status:up") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Sentinel and the replica were not ready within %v: %v %v", readyTimeout, err1, err2)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &Sentinel{Primary: primary, Replica: replica, Sentinel: sentinel}
}

// Cluster is a Redis Cluster of three primaries that serve a third of the
// slots each, and the replicas AddReplica adds.
type Cluster struct {
	Nodes    []*Server // the primaries it started with
	Replicas []*Server // those AddReplica added
}

// Addrs returns the address of each primary, "127.0.0.1:port".
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// URL names every primary, as go-redis's ParseClusterURL reads it: the
// first as the host, the others as addr parameters, so that the client can
// start from any of them.
func (c *Cluster) URL() string {
	addrs := c.Addrs()
	return "redis://" + addrs[0] + "?addr=" + strings.Join(addrs[1:], "&addr=")
}

// StartCluster runs a Redis Cluster of three primaries (no replicas) on
// 127.0.0.1, which keep nothing on disk but the cluster's configuration,
// and returns once every node finds all 16384 slots served. A node that
// stops answering is failed after two seconds, not the default fifteen, so
// that a test that kills one sees the cluster react soon. The nodes are
// stopped at the end of the test. If redis-server or redis-cli is not on
// PATH the test is skipped, or fails when CI is "true".
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	return startCluster(t, false)
}

// StartDurableCluster runs a cluster as StartCluster does, whose nodes
// write and sync their append-only files before answering each write, as
// StartDurable's server does, so that a node killed and restarted comes
// back with every write it answered, and its place in the cluster.
func StartDurableCluster(t testing.TB) *Cluster {
	t.Helper()
	return startCluster(t, true)
}

func startCluster(t testing.TB, durable bool) *Cluster {
	t.Helper()
	cli := need(t, "redis-cli")
	c := &Cluster{}
	for range 3 {
		c.Nodes = append(c.Nodes, launchWith(t, clusterPort, func(s *Server) error {
			s.durable = durable
			s.extra = clusterArgs(s.dir, meetTimeout)
			return nil
		}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v; it wrote:\n%s\n%s", err, out, c.logTails())
	}
	err = c.each("CONFIG SET cluster-node-timeout "+strconv.Itoa(nodeTimeout), func(reply string) bool {
		return reply == "+OK\r\n"
	})
	if err != nil {
		t.Fatalf("setting the node timeout: %v\n%s", err, c.logTails())
	}
	// A restarted node keeps it.
	for _, n := range c.Nodes {
		n.extra = clusterArgs(n.dir, nodeTimeout)
	}
	// redis-cli returns once the nodes agree on who serves which slots; a
	// node calls its cluster ok two seconds after it started at the
	// earliest.
	deadline, _ := ctx.Deadline()
	for {
		err := c.each("CLUSTER INFO", func(info string) bool {
			return strings.Contains(info, "\r\ncluster_state:ok\r\n") && strings.Contains(info, "\r\ncluster_slots_assigned:16384\r\n")
		})
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster was not ok within %v: %v\nredis-cli wrote:\n%s\n%s", clusterTimeout, err, out, c.logTails())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// NodeFor returns the primary that serves key's slot.
func (c *Cluster) NodeFor(t testing.TB, key string) *Server {
	t.Helper()
	// In the unified protocol, so that the key may hold any byte.
	slotReply, err := Do(c.Nodes[0].Addr, fmt.Sprintf("*3\r\n$7\r\nCLUSTER\r\n$7\r\nKEYSLOT\r\n$%d\r\n%s", len(key), key))
	if err != nil {
		t.Fatalf("CLUSTER KEYSLOT: %v", err)
	}
	slot, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(slotReply, ":")))
	if err != nil {
		t.Fatalf("CLUSTER KEYSLOT answered %q", slotReply)
	}
	nodes, err := Do(c.Nodes[0].Addr, "CLUSTER NODES")
	if err != nil {
		t.Fatalf("CLUSTER NODES: %v", err)
	}
	for _, line := range strings.Split(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.Contains(f[2], "master") {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		for _, r := range f[8:] {
			lo, hi, found := strings.Cut(r, "-")
			if !found {
				hi = lo
			}
			from, err1 := strconv.Atoi(lo)
			to, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil || slot < from || slot > to {
				continue
			}
			for _, n := range c.Nodes {
				if n.Addr == addr {
					return n
				}
			}
		}
	}
	t.Fatalf("no primary of the cluster serves slot %d:\n%s", slot, nodes)
	return nil
}

// AddReplica starts a node that replicates primary, one of the cluster's
// Nodes, and returns once the primary streams to it and every node knows
// it, so that it takes over primary's slots if primary stops answering for
// the node timeout.
func (c *Cluster) AddReplica(t testing.TB, primary *Server) *Server {
	t.Helper()
	cli := need(t, "redis-cli")
	r := launchWith(t, clusterPort, func(s *Server) error {
		s.extra = clusterArgs(s.dir, nodeTimeout)
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	reply, err := Do(primary.Addr, "CLUSTER MYID")
	lines := strings.Split(reply, "\r\n")
	if err != nil || len(lines) < 2 || !strings.HasPrefix(lines[0], "$") {
		t.Fatalf("CLUSTER MYID: %q, %v", reply, err)
	}
	id := lines[1]
	// Redis waits five seconds by default for more replicas to sync at once.
	if reply, err := Do(primary.Addr, "CONFIG SET repl-diskless-sync-delay 0"); err != nil || reply != "+OK\r\n" {
		t.Fatalf("CONFIG SET repl-diskless-sync-delay: %q, %v", reply, err)
	}
	out, err := exec.CommandContext(ctx, cli, "--cluster", "add-node", r.Addr, primary.Addr,
		"--cluster-slave", "--cluster-master-id", id).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster add-node: %v; it wrote:\n%s\n%s", err, out, c.logTails())
	}
	everyone := &Cluster{Nodes: append(slices.Clone(c.Nodes), r)}
	deadline, _ := ctx.Deadline()
	for {
		err := everyone.each("CLUSTER NODES", func(nodes string) bool {
			return strings.Contains(nodes, "slave "+id+" ")
		})
		if err == nil {
			var info string
			info, err = Do(primary.Addr, "INFO replication")
			if err == nil && !strings.Contains(info, ",state=online,") {
				err = fmt.Errorf("the primary does not stream to the replica yet:\n%s", info)
			}
		}
		if err == nil {
			c.Replicas = append(c.Replicas, r)
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica was not in place within %v: %v\n%s", clusterTimeout, err, everyone.logTails())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clusterArgs are the arguments of a cluster node in dir, given its node
// timeout in milliseconds.
func clusterArgs(dir string, timeout int) []string {
	return []string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
		"--cluster-node-timeout", strconv.Itoa(timeout),
	}
}

// each sends command to every node at once, as Do waits a moment after
// each reply, and returns nil if want accepts every reply, or else the
// replies it does not.
func (c *Cluster) each(command string, want func(reply string) bool) error {
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Go(func() {
			reply, err := Do(n.Addr, command)
			switch {
			case err != nil:
				errs[i] = fmt.Errorf("%s to %s: %w", command, n.Addr, err)
			case !want(reply):
				errs[i] = fmt.Errorf("%s answered %s:\n%s", n.Addr, command, reply)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// logTails returns the last lines each node wrote, for a failure message.
func (c *Cluster) logTails() string {
	var b strings.Builder
	for _, n := range c.Nodes {
		fmt.Fprintf(&b, "the node on %s logged:\n%s", n.Addr, logTail(n.dir))
	}
	return b.String()
}

// Do sends one command, in the inline protocol, and returns the raw reply:
// what arrives until the server has been quiet for a moment.
func Do(addr, command string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, command+"\r\n"); err != nil {
		return "", err
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := conn.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			if b.Len() > 0 {
				return b.String(), nil
			}
			return "", err
		}
	}
}
