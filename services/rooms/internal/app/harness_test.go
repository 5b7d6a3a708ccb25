package app_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/rooms/internal/app"
	"github.com/parleyhq/parley/services/rooms/internal/fanout"
	"github.com/parleyhq/parley/services/rooms/internal/server"
	"github.com/parleyhq/parley/services/rooms/internal/store/sqlite"
)

const (
	serviceToken = "svc-secret"
	adminToken   = "admin-secret"
)

// testServer is a real rooms gRPC server on a loopback port, backed by a real
// SQLite file, as built by app.NewGRPCServer.
type testServer struct {
	conn  *grpc.ClientConn
	rooms roomsv1.RoomsServiceClient
	admin roomsv1.AdminServiceClient
	hub   *fanout.Hub
	reg   *prometheus.Registry
}

type serverOption func(*server.Limits, *app.GRPCOptions)

func startServer(t testing.TB, opts ...serverOption) *testServer {
	t.Helper()
	hub := fanout.NewHub()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rooms.db"), sqlite.Options{Committed: server.BroadcastCommitted(hub)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	limits := server.DefaultLimits()
	gopts := app.GRPCOptions{ServiceToken: serviceToken, AdminToken: adminToken, RateLimit: 1e6, RateBurst: 1e6, MaxPayloadBytes: limits.MaxPayloadBytes}
	for _, o := range opts {
		o(&limits, &gopts)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	reg := prometheus.NewRegistry()
	deps := &server.Deps{Store: st, Hub: hub, Limits: limits, Log: log, Metrics: server.NewMetrics(reg)}
	srv, _, err := app.NewGRPCServer(log, reg, gopts, deps)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(func() {
		hub.Close()
		srv.Stop()
	})
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &testServer{conn: conn, rooms: roomsv1.NewRoomsServiceClient(conn), admin: roomsv1.NewAdminServiceClient(conn), hub: hub, reg: reg}
}

// counter returns the value of a counter without labels, or the sum over its
// labels.
func (s *testServer) counter(t testing.TB, name string) float64 {
	t.Helper()
	families, err := s.reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
		return sum
	}
	t.Fatalf("no metric %s", name)
	return 0
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func withToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func svcCtx(t testing.TB) context.Context   { return withToken(t.Context(), serviceToken) }
func adminCtx(t testing.TB) context.Context { return withToken(t.Context(), adminToken) }

func mustCreate(t testing.TB, s *testServer, ns, room string, opts *roomsv1.RoomOptions) *roomsv1.Room {
	t.Helper()
	resp, err := s.rooms.CreateRoom(svcCtx(t), &roomsv1.CreateRoomRequest{Namespace: ns, Room: room, Options: opts})
	if err != nil {
		t.Fatalf("CreateRoom %s%s: %v", ns, room, err)
	}
	return resp.GetRoom()
}

func mustJoin(t testing.TB, s *testServer, ns, room, user, session string) *roomsv1.JoinRoomResponse {
	t.Helper()
	resp, err := s.rooms.JoinRoom(svcCtx(t), &roomsv1.JoinRoomRequest{Namespace: ns, Room: room, UserId: user, SessionId: session})
	if err != nil {
		t.Fatalf("JoinRoom %s%s %s: %v", ns, room, user, err)
	}
	return resp
}

func mustPublish(t testing.TB, s *testServer, ns, room, sender, payload string) *roomsv1.PublishResponse {
	t.Helper()
	resp, err := s.rooms.Publish(svcCtx(t), &roomsv1.PublishRequest{Namespace: ns, Room: room, Sender: sender, Payload: payload})
	if err != nil {
		t.Fatalf("Publish to %s%s: %v", ns, room, err)
	}
	return resp
}

// subscribe opens a subscription and waits for its response headers, which the
// server sends once the subscription is registered.
func subscribe(t testing.TB, ctx context.Context, s *testServer, rooms ...*roomsv1.RoomSubscription) grpc.ServerStreamingClient[roomsv1.SubscribeResponse] {
	t.Helper()
	stream, err := s.rooms.Subscribe(ctx, &roomsv1.SubscribeRequest{Rooms: rooms})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatalf("Subscribe headers: %v", err)
	}
	return stream
}

func after(off uint64) *uint64 { return &off }

// deadline bounds how long a test waits for something that should happen.
const deadline = 30 * time.Second
