package e2e

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/kit/proctest"
)

// faultScale is the size of a fault run. make test runs the short one;
// make faults sets PARLEY_FAULTS=long.
type faultScale struct {
	clients int           // publishing clients, spread over two gateways
	period  time.Duration // between one client's messages
	phase   time.Duration // traffic before each fault
	storm   int           // sockets of the disconnect storm
}

var faultScales = map[string]faultScale{
	"short": {clients: 20, period: 100 * time.Millisecond, phase: 2 * time.Second, storm: 400},
	"long":  {clients: 20, period: 100 * time.Millisecond, phase: 30 * time.Second, storm: 2000},
}

// TestFaults runs stock socket.io clients publishing with acks through two
// gateways, and in turn SIGKILLs and SIGTERMs each process behind them,
// storms the gateways with sockets that all leave at once and with sockets
// that abort their CONNECT. Afterwards every message stored reached every
// client but its sender exactly once, every acknowledged message is stored,
// every client that lost its connection recovered, only the clients of a
// stopped gateway lost it, and the rooms service counts no session or
// membership but the live ones.
func TestFaults(t *testing.T) {
	dir, node := nodeDir(t)
	scale := chosenScale(t)
	const namespace, room = faultsNamespace, faultsRoom
	// Leases short enough to see ghosts go within the test (10 s, kept
	// every 3 s, so a busy moment does not lapse them); a rooms service
	// restart must not end live sessions the gateways renew.
	s := startStack(t, "--listen", freeAddr(t), "--log-level", "info",
		"--lease-check-interval", "200ms", "--lease-grace", "5s")
	addrs := []string{freeAddr(t), freeAddr(t)}
	gws := make([]*proctest.Process, len(addrs))
	urls := make([]string, len(addrs))
	startGateway := func(i int) {
		gws[i], urls[i] = s.gateway(addrs[i], "--log-level", "info", "--lease-ttl", "10s")
	}
	for i := range gws {
		startGateway(i)
	}

	sc := startFaultClients(t, dir, node, urls, namespace, room, scale)

	runFaults(t, sc, scale.phase, []fault{
		{"SIGKILL gateway", func() { gws[0].Kill(); startGateway(0) }, clientsOf(0, len(gws), scale.clients)},
		{"SIGTERM gateway", func() { gws[1].Terminate(t); startGateway(1) }, clientsOf(1, len(gws), scale.clients)},
		{"SIGKILL rooms service", func() { s.restartRooms(func(p *proctest.Process) { p.Kill() }) }, nil},
		{"SIGTERM rooms service", func() { s.restartRooms(func(p *proctest.Process) { p.Terminate(t) }) }, nil},
		{"disconnect storm", func() {
			storm := runScript(t, dir, node, "storm.mjs", 5*time.Minute,
				"GATEWAY_URLS="+strings.Join(urls, ","), "NAMESPACE="+namespace,
				"SOCKETS="+strconv.Itoa(scale.storm), "ROOM_PREFIX=storm-")
			storm.expect("JOINED")
			storm.next()
			s.settle(t, namespace, uint64(scale.clients))
		}, nil},
		{"aborted connects", func() {
			for i := range 20 {
				c := dialRaw(t, urls[i%len(urls)])
				c.send("40")
				if i%2 == 1 {
					c.send("41")
				}
				c.ws.Close()
			}
			s.settle(t, "/", 0)
		}, nil},
	})

	s.finishFaults(t, sc, namespace, room, scale.clients)
}

// chosenScale is the fault scale PARLEY_FAULTS names, short by default.
func chosenScale(t *testing.T) faultScale {
	t.Helper()
	name := cmp.Or(os.Getenv("PARLEY_FAULTS"), "short")
	scale, ok := faultScales[name]
	if !ok {
		t.Fatalf("PARLEY_FAULTS=%q: want short or long", name)
	}
	return scale
}

// startFaultClients starts the fault script's clients, spread over the
// gateways at urls, publishing to room, and waits until they are all in.
func startFaultClients(t *testing.T, dir, node string, urls []string, namespace, room string, scale faultScale) *script {
	t.Helper()
	sc := runScript(t, dir, node, "faults.mjs", 15*time.Minute,
		"GATEWAY_URLS="+strings.Join(urls, ","), "NAMESPACE="+namespace, "ROOM="+room,
		"CLIENTS="+strconv.Itoa(scale.clients), "PERIOD_MS="+strconv.Itoa(int(scale.period.Milliseconds())))
	sc.expect("READY")
	return sc
}

// clientsOf lists the clients the fault script spreads onto gateway g of n.
func clientsOf(g, n, clients int) []int {
	var out []int
	for i := g; i < clients; i += n {
		out = append(out, i)
	}
	return out
}

// finishFaults stops the fault script's sending, checks what every client
// received against what was stored, and has the clients leave: then no
// session or membership may be left.
func (s *stack) finishFaults(t *testing.T, sc *script, namespace, room string, clients int) {
	t.Helper()
	sc.nextLine("stop")
	t.Logf("stopped sending; %s messages acknowledged", sc.expect("STOPPED"))
	s.checkDeliveries(t, sc, namespace, room)
	sc.nextLine("leave " + strconv.Itoa(clients))
	sc.expect("LEFT")
	s.settle(t, namespace, 0)
}

// fault is one step of a fault run: what to do to the processes, and the
// clients that must lose their connection (and recover) because of it.
type fault struct {
	name string
	do   func()
	lost []int
}

// runFaults lets the fault script's traffic run for phase before each
// fault, and fails t when other clients than a fault names lost their
// connection.
func runFaults(t *testing.T, sc *script, phase time.Duration, faults []fault) {
	t.Helper()
	for _, f := range faults {
		pause(t, phase)
		t.Logf("fault: %s", f.name)
		f.do()
		sc.nextLine("up")
		var up struct{ Disconnected []int }
		if err := json.Unmarshal([]byte(sc.expect("UP")), &up); err != nil {
			t.Fatal(err)
		}
		slices.Sort(up.Disconnected)
		if !slices.Equal(up.Disconnected, f.lost) {
			t.Errorf("%s: clients %v lost their connection, want %v", f.name, up.Disconnected, f.lost)
		}
	}
}

// pause waits for d, or fails t if the test ends first.
func pause(t *testing.T, d time.Duration) {
	select {
	case <-time.After(d):
	case <-t.Context().Done():
		t.FailNow()
	}
}

// settle waits for the namespace's live sessions and memberships to come to
// want each, as leases of dead sockets lapse.
func (s *stack) settle(t *testing.T, namespace string, want uint64) {
	t.Helper()
	admin := s.adminClient(t)
	eventually(t, 45*time.Second, func() error {
		st, err := admin.GetStats(s.adminCtx(t), &roomsv1.GetStatsRequest{Namespace: namespace})
		if err != nil {
			return err
		}
		if st.GetSessions() != want || st.GetMembers() != want {
			return fmt.Errorf("namespace %s: %d sessions and %d memberships, want %d of each", namespace, st.GetSessions(), st.GetMembers(), want)
		}
		return nil
	})
}

// checkDeliveries hands the script of faults.mjs the stored history of its
// rooms (room, or room-0, room-1, … up to the last that has messages) and
// fails t on any client that missed a message, got one twice, got one not
// stored in its room or had an acknowledged one not stored.
func (s *stack) checkDeliveries(t *testing.T, sc *script, namespace, room string) {
	t.Helper()
	client := s.roomsClient(t)
	read := func() (map[string][][2]any, int) {
		rooms := map[string][][2]any{}
		total := 0
		if h := history(s.serviceCtx(t), t, client, namespace, room); len(h) > 0 {
			rooms[room], total = h, len(h)
		}
		for i := 0; ; i++ {
			name := room + "-" + strconv.Itoa(i)
			h := history(s.serviceCtx(t), t, client, namespace, name)
			if h == nil {
				return rooms, total
			}
			rooms[name] = h
			total += len(h)
		}
	}
	// A send whose ack timed out may still be on its way to the store.
	stored, n := read()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		time.Sleep(time.Second)
		again, m := read()
		if m == n {
			break
		}
		stored, n = again, m
	}
	b, err := json.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "history.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	sc.nextLine("check " + file)
	var result struct {
		Clients, Stored, Acked, Disconnects int
		Refusals                            map[string]int
		Problems                            []json.RawMessage
	}
	if err := json.Unmarshal([]byte(sc.expect("RESULT")), &result); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d clients, %d messages stored, %d acknowledged; sends refused: %v", result.Clients, result.Stored, result.Acked, result.Refusals)
	for _, p := range result.Problems {
		t.Errorf("client problem: %s", p)
	}
	// A process or Redis going away is a refusal to retry; internal says
	// the request itself failed, which none of these faults should cause.
	if n := result.Refusals["internal"]; n > 0 {
		t.Errorf("%d sends refused with internal, want unavailable while a process is down", n)
	}
	// Each acknowledged message was found stored (or trimmed) by the script;
	// a run in which nothing was acknowledged tested nothing.
	if result.Acked == 0 {
		t.Errorf("no message was acknowledged")
	}
}

// history reads a room's whole history as [offset, text] pairs, each
// message's payload being a JSON string; nil if the room does not exist.
func history(ctx context.Context, t *testing.T, rooms roomsv1.RoomsServiceClient, namespace, room string) [][2]any {
	t.Helper()
	out := [][2]any{}
	var after uint64
	for {
		resp, err := rooms.GetHistory(ctx, &roomsv1.GetHistoryRequest{
			Namespace: namespace, Room: room, Limit: 1000,
			Cursor: &roomsv1.GetHistoryRequest_AfterOffset{AfterOffset: after},
		})
		if status.Code(err) == codes.NotFound {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range resp.GetMessages() {
			var text string
			if err := json.Unmarshal([]byte(m.GetPayload()), &text); err != nil {
				t.Fatalf("message %d: payload %q is not a JSON string", m.GetOffset(), m.GetPayload())
			}
			out = append(out, [2]any{m.GetOffset(), text})
			after = m.GetOffset()
		}
		if !resp.GetHasMore() {
			return out
		}
	}
}
