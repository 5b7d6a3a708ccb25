package redistest

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// sendPing sends PING in the inline protocol and returns the first line of the
// answer.
func sendPing(t *testing.T, addr string) (string, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return "", err
	}
	return bufio.NewReader(conn).ReadString('\n')
}

func TestStart(t *testing.T) {
	var first string
	t.Run("serves", func(t *testing.T) {
		first = Start(t)
		second := Start(t)
		if first == second {
			t.Fatalf("two servers on the same address %s", first)
		}
		for _, addr := range []string{first, second} {
			if got, err := sendPing(t, addr); err != nil || got != "+PONG\r\n" {
				t.Errorf("PING to %s: %q, %v; want +PONG", addr, got, err)
			}
		}
	})
	if t.Failed() {
		return
	}
	if first == "" {
		t.Skip("no server was started")
	}
	// The subtest has ended, so its servers have been stopped.
	if got, err := sendPing(t, first); err == nil {
		t.Errorf("PING to %s after the test that started it ended: %q, want no server", first, got)
	}
}

// TestDurableSurvivesKill checks that what a durable server answered is
// there after SIGKILL and Restart, on the same address.
func TestDurableSurvivesKill(t *testing.T) {
	s := StartDurable(t)
	send := func(cmd string) string {
		t.Helper()
		conn, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte(cmd + "\r\n")); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(conn)
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "$5\r\n" {
			line, err = r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
		}
		return line
	}
	if got := send("SET kept value"); got != "+OK\r\n" {
		t.Fatalf("SET answered %q", got)
	}
	s.Kill()
	if _, err := sendPing(t, s.Addr); err == nil {
		t.Fatal("the server answers after Kill")
	}
	s.Restart()
	if got := send("GET kept"); got != "value\r\n" {
		t.Errorf("GET after restart answered %q, want value", got)
	}
}

// TestSentinelPromotesTheReplica checks that the Sentinel reports the
// primary, and the replica once the primary is killed.
func TestSentinelPromotesTheReplica(t *testing.T) {
	s := StartSentinel(t)
	primaryOf := func() string {
		t.Helper()
		reply, err := Do(s.Sentinel.Addr, "SENTINEL GET-MASTER-ADDR-BY-NAME "+masterName)
		if err != nil {
			t.Fatal(err)
		}
		return reply
	}
	_, port, _ := net.SplitHostPort(s.Primary.Addr)
	if got := primaryOf(); !strings.Contains(got, "\r\n"+port+"\r\n") {
		t.Fatalf("the Sentinel names %q as the primary, want port %s", got, port)
	}
	s.Primary.Kill()
	_, port, _ = net.SplitHostPort(s.Replica.Addr)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(primaryOf(), "\r\n"+port+"\r\n") {
		if time.Now().After(deadline) {
			t.Fatalf("the replica was not promoted: the Sentinel names %q", primaryOf())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestStartCluster checks that every node finds the cluster ok, with the
// node timeout StartCluster promises, and that the nodes share the slots:
// one of them serves a key, and the others redirect to it.
func TestStartCluster(t *testing.T) {
	c := StartCluster(t)
	addrs := c.Addrs()
	if len(addrs) != 3 {
		t.Fatalf("%d nodes %v, want 3", len(addrs), addrs)
	}
	if want := "redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]; c.URL() != want {
		t.Errorf("URL %q, want %q", c.URL(), want)
	}
	// Every node is asked everything at once, as Do waits a moment after
	// each reply.
	var wg sync.WaitGroup
	ask := func(addr, command string) *string {
		reply := new(string)
		wg.Go(func() {
			var err error
			if *reply, err = Do(addr, command); err != nil {
				t.Errorf("%s to %s: %v", command, addr, err)
			}
		})
		return reply
	}
	infos, timeouts, sets := make([]*string, len(addrs)), make([]*string, len(addrs)), make([]*string, len(addrs))
	for i, addr := range addrs {
		infos[i] = ask(addr, "CLUSTER INFO")
		timeouts[i] = ask(addr, "CONFIG GET cluster-node-timeout")
		sets[i] = ask(addr, "SET parley value")
	}
	wg.Wait()
	var owner string
	var moved []string
	for i, addr := range addrs {
		if !strings.Contains(*infos[i], "\r\ncluster_state:ok\r\n") {
			t.Errorf("%s answered CLUSTER INFO %q, want cluster_state:ok", addr, *infos[i])
		}
		// The nodes formed the cluster with a shorter timeout.
		if !strings.HasSuffix(*timeouts[i], "\r\n2000\r\n") {
			t.Errorf("%s answered CONFIG GET cluster-node-timeout %q, want 2000", addr, *timeouts[i])
		}
		switch set := *sets[i]; {
		case set == "+OK\r\n":
			if owner != "" {
				t.Errorf("both %s and %s accepted SET of the same key", owner, addr)
			}
			owner = addr
		case strings.HasPrefix(set, "-MOVED "):
			moved = append(moved, set)
		default:
			t.Errorf("SET to %s answered %q, want +OK or -MOVED", addr, set)
		}
	}
	if owner == "" {
		t.Fatalf("no node accepted SET; the others answered %q", moved)
	}
	if len(moved) != 2 {
		t.Errorf("%d nodes answered MOVED (%q), want the 2 other than %s", len(moved), moved, owner)
	}
	// "-MOVED <slot> <address>" names the node that serves the key.
	for _, reply := range moved {
		if !strings.HasSuffix(reply, " "+owner+"\r\n") {
			t.Errorf("a node answered %q, want a redirection to %s", reply, owner)
		}
	}
	if got := c.NodeFor(t, "parley").Addr; got != owner {
		t.Errorf("NodeFor(parley) = %s, want %s, the node that accepted it", got, owner)
	}
	// A key with a hash tag and a NUL, as the rooms service names a room's.
	if a, b := c.NodeFor(t, "x{/\x00lobby}"), c.NodeFor(t, "y{/\x00lobby}z"); a != b {
		t.Errorf("NodeFor of two keys with the same hash tag: %s and %s", a.Addr, b.Addr)
	}
}
