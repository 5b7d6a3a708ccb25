package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/rooms/internal/fanout"
	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// Rooms implements roomsv1.RoomsServiceServer.
type Rooms struct {
	roomsv1.UnimplementedRoomsServiceServer
	d *Deps
}

// NewRooms returns the RoomsService implementation.
func NewRooms(d *Deps) *Rooms { return &Rooms{d: d} }

func (s *Rooms) CreateRoom(ctx context.Context, req *roomsv1.CreateRoomRequest) (*roomsv1.CreateRoomResponse, error) {
	o := req.GetOptions()
	opts := store.RoomOptions{
		Private:            o.GetVisibility() == roomsv1.Visibility_VISIBILITY_PRIVATE,
		MaxMembers:         o.GetMaxMembers(),
		ReadOnly:           o.GetReadOnly(),
		HistoryMaxMessages: s.historyMax(o.GetHistoryMaxMessages()),
		HistoryRetention:   retention(o.GetHistoryRetention()),
		DeleteWhenEmpty:    retention(o.GetDeleteWhenEmpty()),
	}
	r, err := s.d.Store.CreateRoom(ctx, roomKey(req.GetNamespace(), req.GetRoom()), opts, s.d.now())
	if err != nil {
		return nil, errStatus(ctx, s.d.Log, "create room", err)
	}
	return &roomsv1.CreateRoomResponse{Room: toProtoRoom(r)}, nil
}

func (s *Rooms) historyMax(n uint32) uint32 {
	if n == 0 {
		return s.d.Limits.DefaultHistoryMaxMessages
	}
	return n
}

func (s *Rooms) GetRoom(ctx context.Context, req *roomsv1.GetRoomRequest) (*roomsv1.GetRoomResponse, error) {
	r, err := s.d.Store.GetRoom(ctx, roomKey(req.GetNamespace(), req.GetRoom()))
	if err != nil {
		return nil, errStatus(ctx, s.d.Log, "get room", err)
	}
	return &roomsv1.GetRoomResponse{Room: toProtoRoom(r)}, nil
}

func (s *Rooms) ListRooms(ctx context.Context, req *roomsv1.ListRoomsRequest) (*roomsv1.ListRoomsResponse, error) {
	after, err := decodeToken(req.GetPageToken(), 2)
	if err != nil {
		return nil, err
	}
	n := pageSize(req.GetPageSize(), s.d.Limits.DefaultPageSize, s.d.Limits.MaxPageSize)
	rooms, err := s.d.Store.ListRooms(ctx, store.ListRoomsQuery{
		Namespace: req.GetNamespace(),
		Prefix:    req.GetPrefix(),
		After:     roomKey(after[0], after[1]),
		Limit:     n + 1,
	})
	if err != nil {
		return nil, errStatus(ctx, s.d.Log, "list rooms", err)
	}
	resp := &roomsv1.ListRoomsResponse{}
	if len(rooms) > n {
		rooms = rooms[:n]
		last := rooms[n-1]
		resp.NextPageToken = encodeToken(last.Namespace, last.Name)
	}
	for _, r := range rooms {
		resp.Rooms = append(resp.Rooms, toProtoRoom(r))
	}
	return resp, nil
}

func (s *Rooms) UpdateRoom(ctx context.Context, req *roomsv1.UpdateRoomRequest) (*roomsv1.UpdateRoomResponse, error) {
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		return nil, status.Error(codes.InvalidArgument, "update_mask names no field")
	}
	o := req.GetOptions()
	var p store.RoomOptionsPatch
	for _, path := range paths {
		switch path {
		case "visibility":
			v := o.GetVisibility() == roomsv1.Visibility_VISIBILITY_PRIVATE
			p.Private = &v
		case "max_members":
			v := o.GetMaxMembers()
			p.MaxMembers = &v
		case "read_only":
			v := o.GetReadOnly()
			p.ReadOnly = &v
		case "history_max_messages":
			v := s.historyMax(o.GetHistoryMaxMessages())
			p.HistoryMaxMessages = &v
		case "history_retention":
			v := retention(o.GetHistoryRetention())
			p.HistoryRetention = &v
		case "delete_when_empty":
			v := retention(o.GetDeleteWhenEmpty())
			p.DeleteWhenEmpty = &v
		default:
			return nil, status.Errorf(codes.InvalidArgument, "update_mask: unknown field %q", path)
		}
	}
	r, err := s.d.Store.UpdateRoom(ctx, roomKey(req.GetNamespace(), req.GetRoom()), p, s.d.now())
	if err != nil {
		return nil, errStatus(ctx, s.d.Log, "update room", err)
	}
	return &roomsv1.UpdateRoomResponse{Room: toProtoRoom(r)}, nil
}

func (s *Rooms) DeleteRoom(ctx context.Context, req *roomsv1.DeleteRoomRequest) (*roomsv1.DeleteRoomResponse, error) {
	if err := s.d.Store.DeleteRoom(ctx, roomKey(req.GetNamespace(), req.GetRoom())); err != nil {
		return nil, errStatus(ctx, s.d.Log, "delete room", err)
	}
	broadcastDeleted(s.d, req.GetNamespace(), req.GetRoom())
	return &roomsv1.DeleteRoomResponse{}, nil
}

func broadcastDeleted(d *Deps, namespace, room string) {
	d.broadcast(&roomsv1.Event{
		Namespace: namespace, Room: room,
		Kind: &roomsv1.Event_RoomDeleted{RoomDeleted: &roomsv1.RoomDeleted{}},
	})
}

func (s *Rooms) JoinRoom(ctx context.Context, req *roomsv1.JoinRoomRequest) (*roomsv1.JoinRoomResponse, error) {
	res, err := s.join(ctx, store.JoinParams{
		Room:      roomKey(req.GetNamespace(), req.GetRoom()),
		UserID:    req.GetUserId(),
		SessionID: req.GetSessionId(),
		Lease:     req.GetLease(),
		Ephemeral: req.GetEphemeral(),
	})
	if err != nil {
		return nil, errStatus(ctx, s.d.Log, "join room", err)
	}
	resp := &roomsv1.JoinRoomResponse{Room: toProtoRoom(res.Room), Member: toProtoMember(res.Member), Joined: res.Joined}
	if n := req.GetHistoryLimit(); n > 0 {
		// Read up to the offset the join saw, so that the caller, subscribed
		// before it joined, has every later message live and none twice.
		msgs, err := s.d.Store.History(ctx, store.HistoryQuery{
			Room: res.Room.RoomKey, Mode: store.HistoryBefore, Offset: res.Room.LastOffset + 1,
			Limit: min(int(n), s.d.Limits.MaxHistoryPage),
		})
		if err != nil {
			return nil, errStatus(ctx, s.d.Log, "join room: read history", err)
		}
		for _, m := range msgs {
			resp.Messages = append(resp.Messages, toProtoMessage(m))
		}
	}
	if n := req.GetMembersLimit(); n > 0 {
		members, err := s.d.Store.ListMembers(ctx, res.Room.RoomKey, "", min(int(n), s.d.Limits.MaxPageSize))
		if err != nil {
			return nil, errStatus(ctx, s.d.Log, "join room: list members", err)
		}
		for _, m := range members {
			resp.Members = append(resp.Members, toProtoMember(m))
		}
	}
	return resp, nil
}

func (s *Rooms) AddMember(ctx context.Context, req *roomsv1.AddMemberRequest) (*roomsv1.AddMemberResponse, error) {
	res, err := s.join(ctx, store.JoinParams{
		Room:   roomKey(req.GetNamespace(), req.GetRoom()),
		UserID: req.GetUserId(),
		Admit:  true,
	})
	if err != nil {
		return nil, errStatus(ctx, s.d.Log, "add member", err)
	}
	return &roomsv1.AddMemberResponse{Member: toProtoMember(res.Member), Joined: res.Joined}, nil
}

func (s *Rooms) join(ctx context.Context, p store.JoinParams) (store.JoinResult, error) {
	p.Now = s.d.now()
	res, err := s.d.Store.Join(ctx, p)
	if err != nil {
		return res, err
	}
	if res.Joined {
		s.d.broadcast(&roomsv1.Event{
			Namespace: p.Room.Namespace, Room: p.Room.Name,
			Kind: &roomsv1.Event_MemberJoined{MemberJoined: &roomsv1.MemberJoined{UserId: p.UserID}},
		})
	}
	return res, nil
}

func (s *Rooms) LeaveRoom(ctx context.Context, req *roomsv1.LeaveRoomRequest) (*roomsv1.LeaveRoomResponse, error) {
	left, err := s.removeMember(ctx, req.GetNamespace(), req.GetRoom(), req.GetUserId(), false)
	if err != nil {
		return nil, errStatus(ctx, s.d.Log, "leave room", err)
	}
	return &roomsv1.LeaveRoomResponse{Left: left}, nil
}

func (s *Rooms) KickMember(ctx context.Context, req *roomsv1.KickMemberRequest) (*roomsv1.KickMemberResponse, error) {
	removed, err := s.removeMember(ctx, req.GetNamespace(), req.GetRoom(), req.GetUserId(), true)
	if err != nil {
		return nil, errStatus(ctx, s.d.Log, "kick member", err)
	}
	if !removed {
		return nil, status.Errorf(codes.NotFound, "kick member: %q is not a member", req.GetUserId())
	}
	return &roomsv1.KickMemberResponse{}, nil
}

func (s *Rooms) removeMember(ctx context.Context, namespace, room, user string, kicked bool) (bool, error) {
	removed, err := s.d.Store.RemoveMember(ctx, roomKey(namespace, room), user)
	if err != nil || !removed {
		return removed, err
	}
	broadcastLeft(s.d, namespace, room, user, kicked)
	return true, nil
}

func broadcastLeft(d *Deps, namespace, room, user string, kicked bool) {
	d.broadcast(&roomsv1.Event{
		Namespace: namespace, Room: room,
		Kind: &roomsv1.Event_MemberLeft{MemberLeft: &roomsv1.MemberLeft{UserId: user, Kicked: kicked}},
	})
}

// KeepLease creates or extends a lease.
func (s *Rooms) KeepLease(ctx context.Context, req *roomsv1.KeepLeaseRequest) (*roomsv1.KeepLeaseResponse, error) {
	created, err := s.d.Store.KeepLease(ctx, req.GetLease(), s.d.now().Add(req.GetTtl().AsDuration()))
	if err != nil {
		return nil, errStatus(ctx, s.d.Log, "keep lease", err)
	}
	return &roomsv1.KeepLeaseResponse{Created: created}, nil
}

func (s *Rooms) EndSession(ctx context.Context, req *roomsv1.EndSessionRequest) (*roomsv1.EndSessionResponse, error) {
	m, err := s.d.Store.EndSession(ctx, roomKey(req.GetNamespace(), req.GetRoom()), req.GetUserId(), req.GetSessionId())
	if err != nil {
		return nil, errStatus(ctx, s.d.Log, "end session", err)
	}
	return &roomsv1.EndSessionResponse{Member: toProtoMember(m)}, nil
}

func (s *Rooms) ListMembers(ctx context.Context, req *roomsv1.ListMembersRequest) (*roomsv1.ListMembersResponse, error) {
	after, err := decodeToken(req.GetPageToken(), 1)
	if err != nil {
		return nil, err
	}
	n := pageSize(req.GetPageSize(), s.d.Limits.DefaultPageSize, s.d.Limits.MaxPageSize)
	members, err := s.d.Store.ListMembers(ctx, roomKey(req.GetNamespace(), req.GetRoom()), after[0], n+1)
	if err != nil {
		return nil, errStatus(ctx, s.d.Log, "list members", err)
	}
	resp := &roomsv1.ListMembersResponse{}
	if len(members) > n {
		members = members[:n]
		resp.NextPageToken = encodeToken(members[n-1].UserID)
	}
	for _, m := range members {
		resp.Members = append(resp.Members, toProtoMember(m))
	}
	return resp, nil
}

func (s *Rooms) Publish(ctx context.Context, req *roomsv1.PublishRequest) (*roomsv1.PublishResponse, error) {
	if n := len(req.GetPayload()); n > s.d.Limits.MaxPayloadBytes {
		return nil, status.Errorf(codes.ResourceExhausted, "payload is %d bytes, the limit is %d", n, s.d.Limits.MaxPayloadBytes)
	}
	now := s.d.now()
	m, dup, err := s.d.Store.Publish(ctx, store.PublishParams{
		Room:            roomKey(req.GetNamespace(), req.GetRoom()),
		Sender:          req.GetSender(),
		Payload:         req.GetPayload(),
		ClientMessageID: req.GetClientMessageId(),
		SessionID:       req.GetSessionId(),
		Now:             now,
		DedupeSince:     now.Add(-s.d.Limits.DedupeWindow),
	})
	if err != nil {
		return nil, errStatus(ctx, s.d.Log, "publish", err)
	}
	// A new message was broadcast by the store's Committed hook
	// (BroadcastCommitted) before Publish returned: no answer precedes it.
	if dup {
		s.d.Metrics.duplicates.Inc()
	} else {
		s.d.Metrics.published.Inc()
	}
	return &roomsv1.PublishResponse{Offset: m.Offset, CreateTime: timestamppb.New(m.CreateTime), Duplicate: dup}, nil
}

// BroadcastCommitted returns the store.Committed hook to open the store with:
// it broadcasts the messages Publish stores. The store calls it in offset
// order per room, where each caller of Publish would race the others and
// make subscribers see false gaps.
func BroadcastCommitted(hub *fanout.Hub) store.Committed {
	return func(msgs []store.Message) {
		for _, m := range msgs {
			hub.Broadcast(messageEvent(toProtoMessage(m)))
		}
	}
}

func (s *Rooms) GetHistory(ctx context.Context, req *roomsv1.GetHistoryRequest) (*roomsv1.GetHistoryResponse, error) {
	q := store.HistoryQuery{
		Room:  roomKey(req.GetNamespace(), req.GetRoom()),
		Limit: pageSize(req.GetLimit(), s.d.Limits.DefaultHistoryPage, s.d.Limits.MaxHistoryPage),
	}
	switch c := req.GetCursor().(type) {
	case *roomsv1.GetHistoryRequest_BeforeOffset:
		q.Mode, q.Offset = store.HistoryBefore, c.BeforeOffset
	case *roomsv1.GetHistoryRequest_AfterOffset:
		q.Mode, q.Offset = store.HistoryAfter, c.AfterOffset
	}
	n := q.Limit
	q.Limit++
	msgs, err := s.d.Store.History(ctx, q)
	if err != nil {
		return nil, errStatus(ctx, s.d.Log, "get history", err)
	}
	resp := &roomsv1.GetHistoryResponse{}
	if len(msgs) > n {
		resp.HasMore = true
		if q.Mode == store.HistoryAfter {
			msgs = msgs[:n]
		} else {
			msgs = msgs[len(msgs)-n:]
		}
	}
	for _, m := range msgs {
		resp.Messages = append(resp.Messages, toProtoMessage(m))
	}
	return resp, nil
}

func (s *Rooms) SaveSession(ctx context.Context, req *roomsv1.SaveSessionRequest) (*roomsv1.SaveSessionResponse, error) {
	if err := s.d.Store.SaveSessions(ctx, []store.Session{s.session(req)}); err != nil {
		return nil, errStatus(ctx, s.d.Log, "save session", err)
	}
	return &roomsv1.SaveSessionResponse{}, nil
}

func (s *Rooms) SaveSessions(ctx context.Context, req *roomsv1.SaveSessionsRequest) (*roomsv1.SaveSessionsResponse, error) {
	sessions := make([]store.Session, 0, len(req.GetSessions()))
	for _, r := range req.GetSessions() {
		sessions = append(sessions, s.session(r))
	}
	if err := s.d.Store.SaveSessions(ctx, sessions); err != nil {
		return nil, errStatus(ctx, s.d.Log, "save sessions", err)
	}
	return &roomsv1.SaveSessionsResponse{}, nil
}

func (s *Rooms) session(req *roomsv1.SaveSessionRequest) store.Session {
	return store.Session{
		Namespace: req.GetNamespace(), ID: req.GetSessionId(), Data: req.GetData(),
		Expire: s.d.now().Add(req.GetTtl().AsDuration()),
	}
}

func (s *Rooms) TakeSession(ctx context.Context, req *roomsv1.TakeSessionRequest) (*roomsv1.TakeSessionResponse, error) {
	data, err := s.d.Store.TakeSession(ctx, req.GetNamespace(), req.GetSessionId(), s.d.now())
	if err != nil {
		return nil, errStatus(ctx, s.d.Log, "take session", err)
	}
	return &roomsv1.TakeSessionResponse{Data: data}, nil
}
