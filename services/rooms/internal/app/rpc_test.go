package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/rooms/internal/app"
	"github.com/parleyhq/parley/services/rooms/internal/server"
)

// TestRPCStatusCodes checks, for every RPC, a happy path and the status codes
// of its failures, through the whole interceptor chain of a real server.
func TestRPCStatusCodes(t *testing.T) {
	s := startServer(t)
	mustCreate(t, s, "/", "lobby", nil)
	mustCreate(t, s, "/", "vip", &roomsv1.RoomOptions{Visibility: roomsv1.Visibility_VISIBILITY_PRIVATE})
	mustCreate(t, s, "/", "tiny", &roomsv1.RoomOptions{MaxMembers: 1})
	mustCreate(t, s, "/", "news", &roomsv1.RoomOptions{ReadOnly: true})
	mustJoin(t, s, "/", "lobby", "alice", "sock1")
	mustJoin(t, s, "/", "tiny", "alice", "")
	mustJoin(t, s, "/", "news", "alice", "")

	svc, adm := svcCtx(t), adminCtx(t)
	noToken := t.Context()
	badToken := withToken(t.Context(), "wrong")
	big := strings.Repeat("x", 64<<10+1)

	tests := []struct {
		name string
		ctx  context.Context
		call func(ctx context.Context) error
		want codes.Code
	}{
		{"create ok", svc, func(ctx context.Context) error {
			_, err := s.rooms.CreateRoom(ctx, &roomsv1.CreateRoomRequest{Namespace: "/chat", Room: "r1", Options: &roomsv1.RoomOptions{HistoryRetention: durationpb.New(3600e9)}})
			return err
		}, codes.OK},
		{"create exists", svc, func(ctx context.Context) error {
			_, err := s.rooms.CreateRoom(ctx, &roomsv1.CreateRoomRequest{Namespace: "/", Room: "lobby"})
			return err
		}, codes.AlreadyExists},
		{"create bad name", svc, func(ctx context.Context) error {
			_, err := s.rooms.CreateRoom(ctx, &roomsv1.CreateRoomRequest{Namespace: "/", Room: "has space"})
			return err
		}, codes.InvalidArgument},
		{"create bad namespace", svc, func(ctx context.Context) error {
			_, err := s.rooms.CreateRoom(ctx, &roomsv1.CreateRoomRequest{Namespace: "chat", Room: "r"})
			return err
		}, codes.InvalidArgument},
		{"create no token", noToken, func(ctx context.Context) error {
			_, err := s.rooms.CreateRoom(ctx, &roomsv1.CreateRoomRequest{Namespace: "/", Room: "x"})
			return err
		}, codes.Unauthenticated},
		{"create bad token", badToken, func(ctx context.Context) error {
			_, err := s.rooms.CreateRoom(ctx, &roomsv1.CreateRoomRequest{Namespace: "/", Room: "x"})
			return err
		}, codes.Unauthenticated},
		{"get ok", svc, func(ctx context.Context) error {
			_, err := s.rooms.GetRoom(ctx, &roomsv1.GetRoomRequest{Namespace: "/", Room: "lobby"})
			return err
		}, codes.OK},
		{"get admin token ok", adm, func(ctx context.Context) error {
			_, err := s.rooms.GetRoom(ctx, &roomsv1.GetRoomRequest{Namespace: "/", Room: "lobby"})
			return err
		}, codes.OK},
		{"get missing", svc, func(ctx context.Context) error {
			_, err := s.rooms.GetRoom(ctx, &roomsv1.GetRoomRequest{Namespace: "/", Room: "nope"})
			return err
		}, codes.NotFound},
		{"list ok", svc, func(ctx context.Context) error {
			_, err := s.rooms.ListRooms(ctx, &roomsv1.ListRoomsRequest{Namespace: "/"})
			return err
		}, codes.OK},
		{"list bad token", svc, func(ctx context.Context) error {
			_, err := s.rooms.ListRooms(ctx, &roomsv1.ListRoomsRequest{PageToken: "!!!"})
			return err
		}, codes.InvalidArgument},
		{"list page too big", svc, func(ctx context.Context) error {
			_, err := s.rooms.ListRooms(ctx, &roomsv1.ListRoomsRequest{PageSize: 5000})
			return err
		}, codes.InvalidArgument},
		{"update ok", svc, func(ctx context.Context) error {
			_, err := s.rooms.UpdateRoom(ctx, &roomsv1.UpdateRoomRequest{Namespace: "/", Room: "lobby",
				Options: &roomsv1.RoomOptions{MaxMembers: 50}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"max_members"}}})
			return err
		}, codes.OK},
		{"update unknown field", svc, func(ctx context.Context) error {
			_, err := s.rooms.UpdateRoom(ctx, &roomsv1.UpdateRoomRequest{Namespace: "/", Room: "lobby",
				Options: &roomsv1.RoomOptions{}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}}})
			return err
		}, codes.InvalidArgument},
		{"update no mask", svc, func(ctx context.Context) error {
			_, err := s.rooms.UpdateRoom(ctx, &roomsv1.UpdateRoomRequest{Namespace: "/", Room: "lobby", Options: &roomsv1.RoomOptions{}})
			return err
		}, codes.InvalidArgument},
		{"update missing", svc, func(ctx context.Context) error {
			_, err := s.rooms.UpdateRoom(ctx, &roomsv1.UpdateRoomRequest{Namespace: "/", Room: "nope",
				Options: &roomsv1.RoomOptions{}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"read_only"}}})
			return err
		}, codes.NotFound},
		{"join ok", svc, func(ctx context.Context) error {
			_, err := s.rooms.JoinRoom(ctx, &roomsv1.JoinRoomRequest{Namespace: "/", Room: "lobby", UserId: "bob", SessionId: "s-1"})
			return err
		}, codes.OK},
		{"join private", svc, func(ctx context.Context) error {
			_, err := s.rooms.JoinRoom(ctx, &roomsv1.JoinRoomRequest{Namespace: "/", Room: "vip", UserId: "bob"})
			return err
		}, codes.PermissionDenied},
		{"join full", svc, func(ctx context.Context) error {
			_, err := s.rooms.JoinRoom(ctx, &roomsv1.JoinRoomRequest{Namespace: "/", Room: "tiny", UserId: "bob"})
			return err
		}, codes.ResourceExhausted},
		{"join missing", svc, func(ctx context.Context) error {
			_, err := s.rooms.JoinRoom(ctx, &roomsv1.JoinRoomRequest{Namespace: "/", Room: "nope", UserId: "bob"})
			return err
		}, codes.NotFound},
		{"join bad session id", svc, func(ctx context.Context) error {
			_, err := s.rooms.JoinRoom(ctx, &roomsv1.JoinRoomRequest{Namespace: "/", Room: "lobby", UserId: "bob", SessionId: "a b"})
			return err
		}, codes.InvalidArgument},
		{"add member to private ok", svc, func(ctx context.Context) error {
			_, err := s.rooms.AddMember(ctx, &roomsv1.AddMemberRequest{Namespace: "/", Room: "vip", UserId: "carol"})
			return err
		}, codes.OK},
		{"add member missing room", svc, func(ctx context.Context) error {
			_, err := s.rooms.AddMember(ctx, &roomsv1.AddMemberRequest{Namespace: "/", Room: "nope", UserId: "carol"})
			return err
		}, codes.NotFound},
		{"end session ok", svc, func(ctx context.Context) error {
			_, err := s.rooms.EndSession(ctx, &roomsv1.EndSessionRequest{Namespace: "/", Room: "lobby", UserId: "alice", SessionId: "sock1"})
			return err
		}, codes.OK},
		{"end session not member", svc, func(ctx context.Context) error {
			_, err := s.rooms.EndSession(ctx, &roomsv1.EndSessionRequest{Namespace: "/", Room: "lobby", UserId: "zed", SessionId: "s"})
			return err
		}, codes.NotFound},
		{"end session no id", svc, func(ctx context.Context) error {
			_, err := s.rooms.EndSession(ctx, &roomsv1.EndSessionRequest{Namespace: "/", Room: "lobby", UserId: "alice"})
			return err
		}, codes.InvalidArgument},
		{"list members ok", svc, func(ctx context.Context) error {
			_, err := s.rooms.ListMembers(ctx, &roomsv1.ListMembersRequest{Namespace: "/", Room: "lobby"})
			return err
		}, codes.OK},
		{"list members missing", svc, func(ctx context.Context) error {
			_, err := s.rooms.ListMembers(ctx, &roomsv1.ListMembersRequest{Namespace: "/", Room: "nope"})
			return err
		}, codes.NotFound},
		{"publish ok", svc, func(ctx context.Context) error {
			_, err := s.rooms.Publish(ctx, &roomsv1.PublishRequest{Namespace: "/", Room: "lobby", Sender: "alice", Payload: `{"t":1}`})
			return err
		}, codes.OK},
		{"publish system message to read-only ok", svc, func(ctx context.Context) error {
			_, err := s.rooms.Publish(ctx, &roomsv1.PublishRequest{Namespace: "/", Room: "news", Payload: `"extra"`})
			return err
		}, codes.OK},
		{"publish read-only", svc, func(ctx context.Context) error {
			_, err := s.rooms.Publish(ctx, &roomsv1.PublishRequest{Namespace: "/", Room: "news", Sender: "alice", Payload: `"x"`})
			return err
		}, codes.PermissionDenied},
		{"publish not member", svc, func(ctx context.Context) error {
			_, err := s.rooms.Publish(ctx, &roomsv1.PublishRequest{Namespace: "/", Room: "lobby", Sender: "mallory", Payload: `"x"`})
			return err
		}, codes.PermissionDenied},
		{"publish missing room", svc, func(ctx context.Context) error {
			_, err := s.rooms.Publish(ctx, &roomsv1.PublishRequest{Namespace: "/", Room: "nope", Payload: `"x"`})
			return err
		}, codes.NotFound},
		{"publish empty payload", svc, func(ctx context.Context) error {
			_, err := s.rooms.Publish(ctx, &roomsv1.PublishRequest{Namespace: "/", Room: "lobby"})
			return err
		}, codes.InvalidArgument},
		{"publish oversized", svc, func(ctx context.Context) error {
			_, err := s.rooms.Publish(ctx, &roomsv1.PublishRequest{Namespace: "/", Room: "lobby", Payload: big})
			return err
		}, codes.ResourceExhausted},
		{"publish no token", noToken, func(ctx context.Context) error {
			_, err := s.rooms.Publish(ctx, &roomsv1.PublishRequest{Namespace: "/", Room: "lobby", Payload: `"x"`})
			return err
		}, codes.Unauthenticated},
		{"history ok", svc, func(ctx context.Context) error {
			_, err := s.rooms.GetHistory(ctx, &roomsv1.GetHistoryRequest{Namespace: "/", Room: "lobby", Cursor: &roomsv1.GetHistoryRequest_BeforeOffset{BeforeOffset: 10}})
			return err
		}, codes.OK},
		{"history missing", svc, func(ctx context.Context) error {
			_, err := s.rooms.GetHistory(ctx, &roomsv1.GetHistoryRequest{Namespace: "/", Room: "nope"})
			return err
		}, codes.NotFound},
		{"history limit too big", svc, func(ctx context.Context) error {
			_, err := s.rooms.GetHistory(ctx, &roomsv1.GetHistoryRequest{Namespace: "/", Room: "lobby", Limit: 100000})
			return err
		}, codes.InvalidArgument},
		{"subscribe missing room", svc, func(ctx context.Context) error {
			st, err := s.rooms.Subscribe(ctx, &roomsv1.SubscribeRequest{Rooms: []*roomsv1.RoomSubscription{{Namespace: "/", Room: "nope"}}})
			if err != nil {
				return err
			}
			_, err = st.Recv()
			return err
		}, codes.NotFound},
		{"subscribe no rooms", svc, func(ctx context.Context) error {
			st, err := s.rooms.Subscribe(ctx, &roomsv1.SubscribeRequest{})
			if err != nil {
				return err
			}
			_, err = st.Recv()
			return err
		}, codes.InvalidArgument},
		{"subscribe no token", noToken, func(ctx context.Context) error {
			st, err := s.rooms.Subscribe(ctx, &roomsv1.SubscribeRequest{Rooms: []*roomsv1.RoomSubscription{{Namespace: "/", Room: "lobby"}}})
			if err != nil {
				return err
			}
			_, err = st.Recv()
			return err
		}, codes.Unauthenticated},
		{"leave ok", svc, func(ctx context.Context) error {
			_, err := s.rooms.LeaveRoom(ctx, &roomsv1.LeaveRoomRequest{Namespace: "/", Room: "lobby", UserId: "bob"})
			return err
		}, codes.OK},
		{"leave missing room", svc, func(ctx context.Context) error {
			_, err := s.rooms.LeaveRoom(ctx, &roomsv1.LeaveRoomRequest{Namespace: "/", Room: "nope", UserId: "bob"})
			return err
		}, codes.NotFound},
		{"kick ok", svc, func(ctx context.Context) error {
			_, err := s.rooms.KickMember(ctx, &roomsv1.KickMemberRequest{Namespace: "/", Room: "vip", UserId: "carol"})
			return err
		}, codes.OK},
		{"kick not member", svc, func(ctx context.Context) error {
			_, err := s.rooms.KickMember(ctx, &roomsv1.KickMemberRequest{Namespace: "/", Room: "vip", UserId: "carol"})
			return err
		}, codes.NotFound},
		{"stats ok", adm, func(ctx context.Context) error {
			_, err := s.admin.GetStats(ctx, &roomsv1.GetStatsRequest{})
			return err
		}, codes.OK},
		{"stats service token", svc, func(ctx context.Context) error {
			_, err := s.admin.GetStats(ctx, &roomsv1.GetStatsRequest{})
			return err
		}, codes.PermissionDenied},
		{"stats no token", noToken, func(ctx context.Context) error {
			_, err := s.admin.GetStats(ctx, &roomsv1.GetStatsRequest{})
			return err
		}, codes.Unauthenticated},
		{"stats bad namespace", adm, func(ctx context.Context) error {
			_, err := s.admin.GetStats(ctx, &roomsv1.GetStatsRequest{Namespace: "nope"})
			return err
		}, codes.InvalidArgument},
		{"purge ok", adm, func(ctx context.Context) error {
			_, err := s.admin.PurgeHistory(ctx, &roomsv1.PurgeHistoryRequest{Namespace: "/", Room: "lobby"})
			return err
		}, codes.OK},
		{"purge service token", svc, func(ctx context.Context) error {
			_, err := s.admin.PurgeHistory(ctx, &roomsv1.PurgeHistoryRequest{Namespace: "/", Room: "lobby"})
			return err
		}, codes.PermissionDenied},
		{"purge missing", adm, func(ctx context.Context) error {
			_, err := s.admin.PurgeHistory(ctx, &roomsv1.PurgeHistoryRequest{Namespace: "/", Room: "nope"})
			return err
		}, codes.NotFound},
		{"save session ok", svc, func(ctx context.Context) error {
			_, err := s.rooms.SaveSession(ctx, &roomsv1.SaveSessionRequest{Namespace: "/", SessionId: "pid-1", Data: []byte("{}"), Ttl: durationpb.New(60e9)})
			return err
		}, codes.OK},
		{"save session without ttl", svc, func(ctx context.Context) error {
			_, err := s.rooms.SaveSession(ctx, &roomsv1.SaveSessionRequest{Namespace: "/", SessionId: "pid-1", Data: []byte("{}")})
			return err
		}, codes.InvalidArgument},
		{"save session too big", svc, func(ctx context.Context) error {
			_, err := s.rooms.SaveSession(ctx, &roomsv1.SaveSessionRequest{Namespace: "/", SessionId: "pid-1", Data: make([]byte, 65537), Ttl: durationpb.New(60e9)})
			return err
		}, codes.InvalidArgument},
		{"save sessions ok", svc, func(ctx context.Context) error {
			_, err := s.rooms.SaveSessions(ctx, &roomsv1.SaveSessionsRequest{Sessions: []*roomsv1.SaveSessionRequest{
				{Namespace: "/", SessionId: "pid-2", Data: []byte("{}"), Ttl: durationpb.New(60e9)},
				{Namespace: "/chat", SessionId: "pid-3", Data: []byte("{}"), Ttl: durationpb.New(60e9)},
			}})
			return err
		}, codes.OK},
		{"save sessions none", svc, func(ctx context.Context) error {
			_, err := s.rooms.SaveSessions(ctx, &roomsv1.SaveSessionsRequest{})
			return err
		}, codes.InvalidArgument},
		{"save sessions, one without ttl", svc, func(ctx context.Context) error {
			_, err := s.rooms.SaveSessions(ctx, &roomsv1.SaveSessionsRequest{Sessions: []*roomsv1.SaveSessionRequest{
				{Namespace: "/", SessionId: "pid-2", Data: []byte("{}"), Ttl: durationpb.New(60e9)},
				{Namespace: "/", SessionId: "pid-4", Data: []byte("{}")},
			}})
			return err
		}, codes.InvalidArgument},
		{"save sessions no token", noToken, func(ctx context.Context) error {
			_, err := s.rooms.SaveSessions(ctx, &roomsv1.SaveSessionsRequest{Sessions: []*roomsv1.SaveSessionRequest{
				{Namespace: "/", SessionId: "pid-2", Data: []byte("{}"), Ttl: durationpb.New(60e9)},
			}})
			return err
		}, codes.Unauthenticated},
		{"take session ok", svc, func(ctx context.Context) error {
			resp, err := s.rooms.TakeSession(ctx, &roomsv1.TakeSessionRequest{Namespace: "/", SessionId: "pid-1"})
			if err == nil && string(resp.GetData()) != "{}" {
				t.Errorf("TakeSession data %q, want {}", resp.GetData())
			}
			return err
		}, codes.OK},
		{"take session twice", svc, func(ctx context.Context) error {
			_, err := s.rooms.TakeSession(ctx, &roomsv1.TakeSessionRequest{Namespace: "/", SessionId: "pid-1"})
			return err
		}, codes.NotFound},
		{"take session no token", noToken, func(ctx context.Context) error {
			_, err := s.rooms.TakeSession(ctx, &roomsv1.TakeSessionRequest{Namespace: "/", SessionId: "pid-1"})
			return err
		}, codes.Unauthenticated},
		{"delete ok", svc, func(ctx context.Context) error {
			_, err := s.rooms.DeleteRoom(ctx, &roomsv1.DeleteRoomRequest{Namespace: "/", Room: "tiny"})
			return err
		}, codes.OK},
		{"delete missing", svc, func(ctx context.Context) error {
			_, err := s.rooms.DeleteRoom(ctx, &roomsv1.DeleteRoomRequest{Namespace: "/", Room: "tiny"})
			return err
		}, codes.NotFound},
		{"health without token", noToken, func(ctx context.Context) error {
			resp, err := healthpb.NewHealthClient(s.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "parley.rooms.v1.RoomsService"})
			if err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("health status %v, want SERVING", resp.GetStatus())
			}
			return err
		}, codes.OK},
	}
	// The cases run in order: later ones rely on what earlier ones changed.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(tt.ctx)
			if got := status.Code(err); got != tt.want {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.want)
			}
		})
	}
}

// TestRateLimit exhausts a credential's token bucket: further calls are
// refused with RESOURCE_EXHAUSTED while health checks stay open.
func TestRateLimit(t *testing.T) {
	s := startServer(t, func(_ *server.Limits, o *app.GRPCOptions) { o.RateLimit, o.RateBurst = 0.001, 3 })
	var codesSeen []codes.Code
	for range 5 {
		_, err := s.rooms.ListRooms(svcCtx(t), &roomsv1.ListRoomsRequest{})
		codesSeen = append(codesSeen, status.Code(err))
	}
	want := []codes.Code{codes.OK, codes.OK, codes.OK, codes.ResourceExhausted, codes.ResourceExhausted}
	if fmt.Sprint(codesSeen) != fmt.Sprint(want) {
		t.Fatalf("codes = %v, want %v", codesSeen, want)
	}
	if _, err := s.admin.GetStats(adminCtx(t), &roomsv1.GetStatsRequest{}); err != nil {
		t.Errorf("admin credential limited by the service credential's bucket: %v", err)
	}
	// Ending sessions and leaving only lower the service's load, and a
	// gateway refused them would leave members online for good.
	for range 3 {
		_, err := s.rooms.EndSession(svcCtx(t), &roomsv1.EndSessionRequest{Namespace: "/", Room: "r", UserId: "u", SessionId: "s"})
		if status.Code(err) == codes.ResourceExhausted {
			t.Errorf("EndSession rate limited: %v", err)
		}
		_, err = s.rooms.LeaveRoom(svcCtx(t), &roomsv1.LeaveRoomRequest{Namespace: "/", Room: "r", UserId: "u"})
		if status.Code(err) == codes.ResourceExhausted {
			t.Errorf("LeaveRoom rate limited: %v", err)
		}
	}
	if _, err := healthpb.NewHealthClient(s.conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health check rate limited: %v", err)
	}
}

// TestJoinRoomReturnsWhatAClientEntersWith checks that one JoinRoom call can
// bring the latest messages and the members, as the gateway's join ack needs,
// within the limits asked for and those of the service.
func TestJoinRoomReturnsWhatAClientEntersWith(t *testing.T) {
	s := startServer(t, func(l *server.Limits, _ *app.GRPCOptions) { l.MaxHistoryPage, l.MaxPageSize = 4, 2 })
	mustCreate(t, s, "/", "lobby", nil)
	for _, u := range []string{"carol", "alice"} {
		mustJoin(t, s, "/", "lobby", u, "")
	}
	for i := 1; i <= 6; i++ {
		mustPublish(t, s, "/", "lobby", "alice", fmt.Sprintf(`"m%d"`, i))
	}
	tests := []struct {
		name             string
		history, members uint32
		wantOffsets      []uint64
		wantMembers      []string
	}{
		{"neither", 0, 0, nil, nil},
		{"latest two", 2, 0, []uint64{5, 6}, nil},
		{"capped by the service", 10, 10, []uint64{3, 4, 5, 6}, []string{"alice", "bob"}},
		{"one member", 0, 1, nil, []string{"alice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := s.rooms.JoinRoom(svcCtx(t), &roomsv1.JoinRoomRequest{
				Namespace: "/", Room: "lobby", UserId: "bob", SessionId: "s1", HistoryLimit: tt.history, MembersLimit: tt.members,
			})
			if err != nil {
				t.Fatal(err)
			}
			var offsets []uint64
			for _, m := range resp.GetMessages() {
				offsets = append(offsets, m.GetOffset())
			}
			var members []string
			for _, m := range resp.GetMembers() {
				members = append(members, m.GetUserId())
			}
			if fmt.Sprint(offsets) != fmt.Sprint(tt.wantOffsets) || fmt.Sprint(members) != fmt.Sprint(tt.wantMembers) {
				t.Errorf("messages %v, members %v; want %v, %v", offsets, members, tt.wantOffsets, tt.wantMembers)
			}
			if resp.GetRoom().GetLastOffset() != 6 {
				t.Errorf("last offset %d, want 6", resp.GetRoom().GetLastOffset())
			}
		})
	}
}
