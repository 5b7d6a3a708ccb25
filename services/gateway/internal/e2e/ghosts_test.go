package e2e

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
)

// TestAbortedConnectsLeaveNoGhosts sends namespace CONNECTs and closes the
// connection before the reply, or sends DISCONNECT right after, as a flaky
// or hostile client would: once the gateway has noticed, no such socket may
// be left a member online in its default room, and the connections gauge
// is back to zero.
func TestAbortedConnectsLeaveNoGhosts(t *testing.T) {
	s := startStack(t)
	_, url := s.gateway("127.0.0.1:0")
	rooms := s.roomsClient(t)
	const tries = 10
	for i := range tries {
		guest := dialRaw(t, url)
		guest.send("40")
		if i%2 == 1 {
			guest.send("41")
		}
		guest.ws.Close()

		signed := dialRaw(t, url)
		b, _ := json.Marshal(map[string]any{"token": token(t, "ghost")})
		signed.send("40/chat," + string(b))
		signed.ws.Close()
	}

	online := func(namespace, room string) []string {
		t.Helper()
		resp, err := rooms.ListMembers(s.serviceCtx(t), &roomsv1.ListMembersRequest{Namespace: namespace, Room: room})
		if err != nil {
			t.Fatal(err)
		}
		var users []string
		for _, m := range resp.GetMembers() {
			if m.GetOnline() || m.GetSessionCount() > 0 {
				users = append(users, m.GetUserId())
			}
		}
		return users
	}
	eventually(t, 20*time.Second, func() error {
		guests, signedIn := online("/", "room1"), online("/chat", "general")
		if gauge := gatewayMetric(t, url, "parley_gateway_connections"); len(guests) > 0 || len(signedIn) > 0 || gauge != 0 {
			return fmt.Errorf("after %d aborted connects: online in room1 %s, in general %s; connections gauge %v",
				2*tries, strings.Join(guests, ","), strings.Join(signedIn, ","), gauge)
		}
		return nil
	})
}

// TestLargeFramesGetCodedAcks sends messages in frames of up to 1 MB, far
// over --max-message-bytes: each gets a resource_exhausted ack and the
// connection stays up.
func TestLargeFramesGetCodedAcks(t *testing.T) {
	s := startStack(t)
	_, url := s.gateway("127.0.0.1:0")
	c := dialRaw(t, url)
	if ok, reply := c.connect("", nil); !ok {
		t.Fatalf("connect refused: %v", reply)
	}
	for i, size := range []int{100 << 10, 500 << 10, 1<<20 - 64} {
		id := strconv.Itoa(i + 1)
		c.send("42" + id + `["send message","room1","` + strings.Repeat("x", size) + `"]`)
		frame := c.read("43" + id + "[")
		var ack []map[string]any
		if err := json.Unmarshal([]byte(frame[len("43"+id):]), &ack); err != nil {
			t.Fatalf("ack %.100s: %v", frame, err)
		}
		e, _ := ack[0]["error"].(map[string]any)
		if ack[0]["ok"] != false || e["code"] != "resource_exhausted" {
			t.Fatalf("%d-byte frame: ack %v, want resource_exhausted", size, ack[0])
		}
	}
}

// TestEventInTheSamePayloadAsConnect posts a namespace CONNECT and an event
// in one long-polling payload, as a client that emits on connect may: the
// event must be handled once the socket is connected, not treated as a
// packet for a namespace the connection is not in (which closes it).
func TestEventInTheSamePayloadAsConnect(t *testing.T) {
	s := startStack(t)
	_, url := s.gateway("127.0.0.1:0")
	for i := range 10 {
		c, _ := openPolling(t, url+"/socket.io/?EIO=4&transport=polling")
		c.post("40", `421["rooms"]`)
		var buf []string
		if p := c.next(&buf); !strings.HasPrefix(p, "40{") {
			t.Fatalf("try %d: got %q, want the CONNECT reply", i, p)
		}
		if p := c.next(&buf); !strings.HasPrefix(p, `431[{"ok":true`) {
			t.Fatalf("try %d: got %q, want the rooms ack", i, p)
		}
	}
}

// TestCrashedGatewayLeavesNoGhosts kills a gateway holding guests in room1
// and signed-in users in general: once its lease lapses, the guests are out
// of room1 and the users offline, and the store counts no session.
func TestCrashedGatewayLeavesNoGhosts(t *testing.T) {
	s := startStack(t, "--lease-check-interval", "200ms", "--lease-grace", "0s")
	gw, url := s.gateway("127.0.0.1:0", "--lease-ttl", "2s")
	for range 5 {
		if ok, reply := dialRaw(t, url).connect("", nil); !ok {
			t.Fatalf("guest refused: %v", reply)
		}
	}
	for _, user := range []string{"ann", "ben", "cid"} {
		if ok, reply := dialRaw(t, url).connect("/chat", map[string]any{"token": token(t, user)}); !ok {
			t.Fatalf("%s refused: %v", user, reply)
		}
	}
	rooms := s.roomsClient(t)
	members := func(namespace, room string) (all, online int) {
		t.Helper()
		resp, err := rooms.ListMembers(s.serviceCtx(t), &roomsv1.ListMembersRequest{Namespace: namespace, Room: room})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range resp.GetMembers() {
			if m.GetOnline() {
				online++
			}
		}
		return len(resp.GetMembers()), online
	}
	if all, online := members("/", "room1"); all != 5 || online != 5 {
		t.Fatalf("room1 before the crash: %d members, %d online; want 5 and 5", all, online)
	}
	gw.Kill()

	admin := s.adminClient(t)
	eventually(t, 15*time.Second, func() error {
		guests, _ := members("/", "room1")
		users, online := members("/chat", "general")
		stats, err := admin.GetStats(s.adminCtx(t), &roomsv1.GetStatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if sessions := stats.GetSessions(); guests != 0 || users != 3 || online != 0 || sessions != 0 {
			return fmt.Errorf("15s after the crash: %d guests in room1, %d of %d users online in general, %v sessions",
				guests, online, users, sessions)
		}
		return nil
	})
}
