package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/kit/proctest"
)

// nodeDir returns the Node test package, failing under CI and skipping
// elsewhere when its dependencies are not installed.
func nodeDir(t *testing.T) (dir, node string) {
	t.Helper()
	dir = filepath.Join(repoRoot(), "services", "gateway", "test", "node")
	_, modErr := os.Stat(filepath.Join(dir, "node_modules", "socket.io-client"))
	node, nodeErr := exec.LookPath("node")
	if modErr != nil || nodeErr != nil {
		msg := fmt.Sprintf("node (%v) and socket.io-client in %s (%v) are needed: make node-deps", nodeErr, dir, modErr)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir, node
}

// TestRecoveryAcrossGatewayRestart stops the gateway under a stock
// socket.io-client v4, publishes while it is down, and starts a new gateway
// process on the same address: the client must come back with
// socket.recovered === true, its socket id, and every message exactly once,
// in order. The new process shares nothing with the old one but the rooms
// service, as another instance behind a load balancer would.
func TestRecoveryAcrossGatewayRestart(t *testing.T) {
	dir, node := nodeDir(t)
	stops := []struct {
		name string
		stop func(*testing.T, *proctest.Process)
	}{
		{"SIGTERM", func(t *testing.T, p *proctest.Process) { p.Terminate(t) }},
		// A crash saves nothing on the way out: the session must have been
		// stored before it was needed.
		{"SIGKILL", func(_ *testing.T, p *proctest.Process) { p.Kill() }},
	}
	for _, transport := range []string{"websocket", "polling"} {
		for _, stop := range stops {
			t.Run(transport+"/"+stop.name, func(t *testing.T) {
				testRecoveryAcrossRestart(t, dir, node, transport, stop.stop)
			})
		}
	}
}

func testRecoveryAcrossRestart(t *testing.T, dir, node, transport string, stop func(*testing.T, *proctest.Process)) {
	s := startStack(t)
	addr := freeAddr(t)
	gw, url := s.gateway(addr)
	room := fmt.Sprintf("restart-%s-%d", transport, time.Now().UnixNano())
	publish := s.publisher(t, "/", room)

	sc := runScript(t, dir, node, "restart.mjs", 2*time.Minute,
		"GATEWAY_URL="+url, "ROOM="+room, "TRANSPORTS="+transport)
	expect, next := sc.expect, sc.next

	expect("JOINED")
	publish("before")
	next()
	expect("READY")
	stop(t, gw)
	expect("DISCONNECTED")
	for i := 1; i <= 3; i++ {
		publish(fmt.Sprintf("missed-%d", i))
	}
	s.gateway(addr)
	next()
	expect("RECOVERED")
	publish("after")
	next()
	var got []string
	if err := json.Unmarshal([]byte(expect("GOT")), &got); err != nil {
		t.Fatal(err)
	}
	want := []string{"before", "missed-1", "missed-2", "missed-3", "after"}
	if !slices.Equal(got, want) {
		t.Fatalf("client received %q, want %q", got, want)
	}
}

// roomsClient connects to the stack's rooms service, as an internal service
// would; use it with serviceCtx.
func (s *stack) roomsClient(t *testing.T) roomsv1.RoomsServiceClient {
	t.Helper()
	return roomsv1.NewRoomsServiceClient(s.roomsConn(t))
}

// roomsConn connects to the stack's rooms service; calls need a token.
func (s *stack) roomsConn(t *testing.T) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(s.roomsAdr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// adminClient connects to the stack's rooms service as an operator would;
// use it with adminCtx.
func (s *stack) adminClient(t *testing.T) roomsv1.AdminServiceClient {
	t.Helper()
	return roomsv1.NewAdminServiceClient(s.roomsConn(t))
}

func (s *stack) adminCtx(t *testing.T) context.Context {
	return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+adminToken)
}

func (s *stack) serviceCtx(t *testing.T) context.Context {
	return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+serviceToken)
}

// publisher returns a function publishing system messages (JSON strings) to
// the room straight through the rooms service.
func (s *stack) publisher(t *testing.T, namespace, room string) func(text string) {
	t.Helper()
	rooms := s.roomsClient(t)
	return func(text string) {
		t.Helper()
		ctx := s.serviceCtx(t)
		payload, _ := json.Marshal(text)
		if _, err := rooms.Publish(ctx, &roomsv1.PublishRequest{Namespace: namespace, Room: room, Payload: string(payload)}); err != nil {
			t.Fatalf("publish %q: %v", text, err)
		}
	}
}

// TestClientsRecoverWhenTheLeaseLapsed stops the rooms service for longer
// than the gateway's lease, so that the service ends the gateway's sessions
// (and the guest's membership) as soon as it is back: the gateway must
// notice, and its client come back through recovery with every message,
// rather than stay connected to a room it is no longer in.
func TestClientsRecoverWhenTheLeaseLapsed(t *testing.T) {
	dir, node := nodeDir(t)
	s := startStack(t, "--listen", freeAddr(t), "--lease-check-interval", "100ms", "--lease-grace", "0s")
	_, url := s.gateway("127.0.0.1:0", "--lease-ttl", "1s")
	room := fmt.Sprintf("lapse-%d", time.Now().UnixNano())
	publish := s.publisher(t, "/", room)

	sc := runScript(t, dir, node, "restart.mjs", 2*time.Minute, "GATEWAY_URL="+url, "ROOM="+room)
	sc.expect("JOINED")
	publish("before")
	sc.next()
	sc.expect("READY")
	s.restartRooms(func(p *proctest.Process) {
		p.Kill()
		time.Sleep(2 * time.Second) // the outage outlasts the lease
	})
	sc.expect("DISCONNECTED")
	for i := 1; i <= 3; i++ {
		publish(fmt.Sprintf("missed-%d", i))
	}
	sc.next()
	sc.expect("RECOVERED")
	publish("after")
	sc.next()
	var got []string
	if err := json.Unmarshal([]byte(sc.expect("GOT")), &got); err != nil {
		t.Fatal(err)
	}
	if want := []string{"before", "missed-1", "missed-2", "missed-3", "after"}; !slices.Equal(got, want) {
		t.Fatalf("client received %q, want %q", got, want)
	}
}
