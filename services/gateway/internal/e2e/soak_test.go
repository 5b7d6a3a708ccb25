package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
)

// TestSoak runs stock socket.io clients in rooms of ten, every one also in
// the default room (so each sees every other's presence), sending one
// message a second for a while; then half of them leave at once, and then
// the rest. Nothing sent may be lost or doubled, no client that stays may be
// disconnected (the crowd's presence events included), the gateway's memory
// must not grow once warm, and once everyone has left the gateway must be
// back to the goroutines it had before anyone came and the rooms service
// must count no session or membership. make test runs a short
// soak; PARLEY_SOAK sets its length and PARLEY_SOAK_CLIENTS its size (make
// faults: 10 minutes, 1,000 clients).
func TestSoak(t *testing.T) {
	dir, node := nodeDir(t)
	length, clients := 20*time.Second, 100
	if v := os.Getenv("PARLEY_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("PARLEY_SOAK=%q: %v", v, err)
		}
		length = d
	}
	if v := os.Getenv("PARLEY_SOAK_CLIENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 20 {
			t.Fatalf("PARLEY_SOAK_CLIENTS=%q: want a number of at least 20", v)
		}
		clients = n
	}
	s := startStack(t, "--log-level", "info", "--lease-check-interval", "500ms")
	_, url := s.gateway("127.0.0.1:0", "--log-level", "info", "--lease-ttl", "5s")

	idle := gatewayMetric(t, url, "go_goroutines")
	sc := runScript(t, dir, node, "faults.mjs", length+10*time.Minute,
		"GATEWAY_URLS="+url, "NAMESPACE=/", "ROOM=soak", "ROOM_SIZE=10",
		"CLIENTS="+strconv.Itoa(clients), "PERIOD_MS=1000")
	sc.expect("READY")
	type usage struct{ rss, heap float64 }
	sample := func() usage {
		return usage{
			rss:  gatewayMetric(t, url, "process_resident_memory_bytes"),
			heap: gatewayMetric(t, url, "go_memstats_heap_inuse_bytes"),
		}
	}
	wait := func(d time.Duration) {
		select {
		case <-time.After(d):
		case <-t.Context().Done():
			t.FailNow()
		}
	}
	// Warm: every client connected, joined and sending for a while.
	wait(length / 4)
	warm := sample()
	peak := warm
	series := []string{}
	for range 6 {
		wait(length / 8)
		u := sample()
		peak = usage{max(peak.rss, u.rss), max(peak.heap, u.heap)}
		series = append(series, fmt.Sprintf("%.0f/%.0f", u.rss/(1<<20), u.heap/(1<<20)))
	}
	t.Logf("gateway resident/heap MiB: warm %.0f/%.0f, then %s", warm.rss/(1<<20), warm.heap/(1<<20), strings.Join(series, " "))
	// The same sockets doing the same thing need the same memory: allow the
	// heap's ordinary swing between collections, no more.
	if peak.rss > 1.5*warm.rss || peak.heap > 2*warm.heap {
		t.Errorf("the gateway grew while its load stayed the same")
	}

	sc.nextLine("up")
	var up struct{ Disconnected []int }
	if err := json.Unmarshal([]byte(sc.expect("UP")), &up); err != nil {
		t.Fatal(err)
	}
	if len(up.Disconnected) > 0 {
		t.Errorf("clients %v were disconnected during the soak", up.Disconnected)
	}
	sc.nextLine("stop")
	sc.expect("STOPPED")
	s.checkDeliveries(t, sc, "/", "soak")

	// Half leave at once: every one that stays gets a "member left" for each
	// of them in room1, and must not be taken for a slow reader.
	sc.nextLine("leave " + strconv.Itoa(clients/2))
	sc.expect("LEFT")
	wait(5 * time.Second)
	sc.nextLine("up")
	if err := json.Unmarshal([]byte(sc.expect("UP")), &up); err != nil {
		t.Fatal(err)
	}
	if len(up.Disconnected) > 0 {
		t.Errorf("clients %v were disconnected when half the others left", up.Disconnected)
	}
	sc.nextLine("leave " + strconv.Itoa(clients))
	sc.expect("LEFT")

	admin := s.adminClient(t)
	var goroutines float64
	eventually(t, 30*time.Second, func() error {
		st, err := admin.GetStats(s.adminCtx(t), &roomsv1.GetStatsRequest{Namespace: "/"})
		if err != nil {
			t.Fatal(err)
		}
		goroutines = gatewayMetric(t, url, "go_goroutines")
		// A few goroutines come and go on their own (timers, the rooms
		// service connection); a socket's would be hundreds.
		if st.GetSessions() != 0 || st.GetMembers() != 0 || goroutines > idle+10 {
			return fmt.Errorf("after everyone left: %d sessions, %d memberships; %.0f gateway goroutines, %.0f before", st.GetSessions(), st.GetMembers(), goroutines, idle)
		}
		return nil
	})
	t.Logf("gateway goroutines: %.0f before the clients came, %.0f after they left", idle, goroutines)
}
