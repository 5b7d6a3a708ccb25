package roomsclient_test

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/gateway/internal/roomsclient"
)

// replica is a rooms service that names itself in GetRoom's answer.
type replica struct {
	roomsv1.UnimplementedRoomsServiceServer
	name   string
	health *health.Server
	addr   string
}

func (r *replica) GetRoom(context.Context, *roomsv1.GetRoomRequest) (*roomsv1.GetRoomResponse, error) {
	return &roomsv1.GetRoomResponse{Room: &roomsv1.Room{Name: r.name}}, nil
}

func startReplica(t *testing.T, name string) *replica {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{name: name, health: health.NewServer(), addr: lis.Addr().String()}
	srv := grpc.NewServer()
	roomsv1.RegisterRoomsServiceServer(srv, r)
	healthpb.RegisterHealthServer(srv, r.health)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return r
}

// TestDialSpreadsOverReplicas checks that calls go to every address given,
// and only to those serving once one of them says it is not.
func TestDialSpreadsOverReplicas(t *testing.T) {
	a, b := startReplica(t, "a"), startReplica(t, "b")
	conn, err := roomsclient.Dial(a.addr+","+b.addr, "token")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := roomsv1.NewRoomsServiceClient(conn)
	// answers makes calls and counts the answers of each replica.
	answers := func(calls int) map[string]int {
		got := map[string]int{}
		for range calls {
			resp, err := c.GetRoom(t.Context(), &roomsv1.GetRoomRequest{})
			if err != nil {
				t.Fatal(err)
			}
			got[resp.GetRoom().GetName()]++
		}
		return got
	}
	if got := answers(20); got["a"] == 0 || got["b"] == 0 {
		t.Errorf("answers from a healthy pair: %v, want both", got)
	}

	a.health.Shutdown() // a says it is not serving, as a stopping replica does
	deadline := time.Now().Add(10 * time.Second)
	for answers(1)["a"] > 0 {
		if time.Now().After(deadline) {
			t.Fatal("calls still reach a replica that stopped serving")
		}
	}
	if got := answers(20); got["a"] != 0 || got["b"] != 20 {
		t.Errorf("answers once a stopped serving: %v, want all from b", got)
	}
}
