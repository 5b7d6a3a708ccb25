package edge

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/gateway/internal/relay"
	"github.com/parleyhq/parley/services/gateway/internal/wire"
)

// joinResult is the ack of join and switch room.
type joinResult struct {
	Room     string         `json:"room"`
	Offset   uint64         `json:"offset"`
	Messages []wire.Message `json:"messages"`
	Members  []member       `json:"members"`
}

// join makes the socket a member of the room and starts delivering it the
// room's events. The relay's subscription is registered before the room's
// state is read, so that every message is either in the ack's history or
// delivered live, never neither and never both.
func (c *client) join(ctx context.Context, req roomRequest) (joinResult, error) {
	return c.enterRoom(ctx, req.Room, true)
}

// autoJoin joins a namespace's default room as the socket connects. Nobody
// sees an ack, so the room's messages and members are not read.
func (c *client) autoJoin(ctx context.Context, room string) error {
	_, err := c.enterRoom(ctx, room, false)
	return err
}

// enterRoom joins room, with the join ack's state when ack is set.
func (c *client) enterRoom(ctx context.Context, room string, ack bool) (joinResult, error) {
	c.mu.Lock()
	_, already := c.rooms[room]
	full := len(c.rooms) >= c.g.cfg.Limits.MaxRooms
	c.mu.Unlock()
	if !already && full {
		return joinResult{}, errorf(CodeResourceExhausted, "a socket may be in at most %d rooms", c.g.cfg.Limits.MaxRooms)
	}
	var sub *relay.Room
	if !already {
		var err error
		if sub, err = c.acquire(ctx, room); err != nil {
			return joinResult{}, err
		}
	}
	res, state, err := c.enter(ctx, room, ack)
	if err == nil && !already {
		err = c.attach(ctx, room, sub, res.Offset, state)
	}
	if err != nil {
		if !already {
			c.g.cfg.Relay.Release(sub)
		}
		return joinResult{}, err
	}
	if !already && c.isLive() {
		c.save(ctx)
	}
	return res, nil
}

// acquire takes the relay's reference on room, creating the room first when
// it does not exist and the namespace allows it.
func (c *client) acquire(ctx context.Context, room string) (*relay.Room, error) {
	k := c.roomKey(room)
	sub, err := c.g.cfg.Relay.Acquire(ctx, k)
	if status.Code(err) != codes.NotFound || !c.ns.CreateRooms {
		return sub, err
	}
	if !c.g.allowCreate(c.user) {
		return nil, errorf(CodeResourceExhausted, "too many new rooms: at most %d at once and %g a second", c.g.cfg.Limits.CreateBurst, c.g.cfg.Limits.CreateRate)
	}
	create := &roomsv1.CreateRoomRequest{Namespace: c.ns.Name, Room: room}
	if c.ns.emptyTTL > 0 {
		create.Options = &roomsv1.RoomOptions{DeleteWhenEmpty: durationpb.New(c.ns.emptyTTL)}
	}
	_, err = c.g.cfg.Rooms.CreateRoom(ctx, create)
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return nil, err
	}
	// The room exists now, but a subscription another join started before it
	// did may still be on its way to NotFound, and this one can share it: the
	// next try starts a new one.
	for try := 1; ; try++ {
		sub, err = c.g.cfg.Relay.Acquire(ctx, k)
		if status.Code(err) != codes.NotFound || try == acquireTries {
			return sub, err
		}
	}
}

// acquireTries bounds the subscriptions a join tries once it has created its
// room (see acquire).
const acquireTries = 3

// enter joins the user to room in the rooms service, which answers, when ack
// is set, with what the join ack shows: the last messages and the members.
// It also returns the room as the join left it.
func (c *client) enter(ctx context.Context, room string, ack bool) (joinResult, *roomsv1.Room, error) {
	req := c.joinRequest(room)
	if ack {
		req.HistoryLimit, req.MembersLimit = uint32(c.g.cfg.Limits.HistoryOnJoin), membersPage
	}
	jr, err := c.g.cfg.Rooms.JoinRoom(ctx, req)
	if err != nil {
		return joinResult{}, nil, err
	}
	res := joinResult{
		Room: room, Offset: jr.GetRoom().GetLastOffset(),
		Messages: wire.NewMessages(jr.GetMessages()), Members: toMembers(jr.GetMembers()),
	}
	return res, jr.GetRoom(), nil
}

// errDisconnected refuses an event whose socket disconnected while it ran.
var errDisconnected = errorf(CodeUnavailable, "the socket disconnected")

// attach hands the socket to the relay's subscription sub of room, caught up
// from seen, where state (the room as the socket's join left it) says the
// room has reached, and records the room as joined. The caller holds the
// reference on sub, which the socket keeps on success.
func (c *client) attach(ctx context.Context, room string, sub *relay.Room, seen uint64, state *roomsv1.Room) error {
	c.g.cfg.Relay.SetSize(sub, int(state.GetMemberCount()))
	reached, err := c.g.cfg.Relay.Add(ctx, sub, c.member, seen, state.GetLastOffset())
	if err != nil {
		return err
	}
	if !c.record(room, &joined{sub: sub, offset: reached, epoch: state.GetEpoch()}) {
		// The socket went away during the join: undo it, as its disconnect
		// could not.
		c.g.cfg.Relay.Remove(sub, c.member)
		if err := c.end(ctx, room, gone); err != nil {
			c.g.cfg.Log.Error("ending session after disconnect failed", "namespace", c.ns.Name, "room", room, "user", c.user, "err", err)
		}
		return errDisconnected
	}
	return nil
}

func (c *client) leaveRoom(ctx context.Context, req roomRequest) (struct{}, error) {
	if !c.joined(req.Room) {
		return struct{}{}, errorf(CodeNotFound, "not in room %q", req.Room)
	}
	if err := c.leave(ctx, req.Room, asked); err != nil {
		return struct{}{}, err
	}
	c.save(ctx)
	return struct{}{}, nil
}

// switchRoom leaves every other room, then joins req.Room.
func (c *client) switchRoom(ctx context.Context, req roomRequest) (joinResult, error) {
	c.mu.Lock()
	var others []string
	for r := range c.rooms {
		if r != req.Room {
			others = append(others, r)
		}
	}
	c.mu.Unlock()
	for _, r := range others {
		if err := c.leave(ctx, r, asked); err != nil {
			return joinResult{}, err
		}
	}
	return c.join(ctx, req)
}

// roomInfo is one room in the `rooms` ack.
type roomInfo struct {
	Name    string `json:"name"`
	Members uint32 `json:"members"`
}

type roomsResult struct {
	Rooms []roomInfo `json:"rooms"`
}

// roomsPage is how many rooms `rooms` lists: the namespace's first, by name.
const roomsPage = 100

// listRooms lists the namespace's public rooms with their member counts.
func (c *client) listRooms(ctx context.Context, _ struct{}) (roomsResult, error) {
	resp, err := c.g.cfg.Rooms.ListRooms(ctx, &roomsv1.ListRoomsRequest{Namespace: c.ns.Name, PageSize: roomsPage})
	if err != nil {
		return roomsResult{}, err
	}
	rooms := make([]roomInfo, 0, len(resp.GetRooms()))
	for _, r := range resp.GetRooms() {
		if r.GetOptions().GetVisibility() == roomsv1.Visibility_VISIBILITY_PRIVATE {
			continue
		}
		rooms = append(rooms, roomInfo{Name: r.GetName(), Members: r.GetMemberCount()})
	}
	return roomsResult{Rooms: rooms}, nil
}

// joinRequest joins the socket's session to room under the gateway's lease;
// a guest's membership ends with it.
func (c *client) joinRequest(room string) *roomsv1.JoinRoomRequest {
	return &roomsv1.JoinRoomRequest{
		Namespace: c.ns.Name, Room: room, UserId: c.user, SessionId: c.id,
		Lease: c.g.lease, Ephemeral: !c.ns.Auth,
	}
}
