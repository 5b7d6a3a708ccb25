package edge

import (
	"context"
	"encoding/json"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/gateway/internal/wire"
)

// Connection state recovery, backed by the rooms service rather than gateway
// memory, so that it survives a gateway restart or crash and works across
// gateways:
//
//   - every "receive message" a socket gets ends with its position: its
//     session key and its offset in each of its rooms (wire.EncodePosition);
//     the client keeps the last one;
//   - the session is stored under that key (sessions.go), and stored once
//     more when the socket disconnects for a recoverable reason;
//   - a client reconnecting with its last position is restored by whichever
//     gateway it reaches, once it passes the namespace's auth again: same
//     socket id, same rooms, and every message after its offsets, in order,
//     before live delivery (the relay's catch-up).

// restored is a socket's data between RestoreSession and its connection.
type restored struct {
	user     string
	key      string
	admitted chan struct{}         // closed when socket.io has completed the connection
	pos      map[string]savedPlace // room -> the last offset the client has, and its epoch
}

// adapterBuilder makes the socket.io adapter of each namespace.
type adapterBuilder struct{ g *Gateway }

// Adapter returns the socket.io adapter constructor that saves and restores
// sessions through the rooms service.
func (g *Gateway) Adapter() socket.AdapterConstructor { return adapterBuilder{g: g} }

func (b adapterBuilder) New(nsp socket.Namespace) socket.Adapter {
	a := &sessionAdapter{Adapter: socket.MakeAdapter(), g: b.g, ns: nsp.Name()}
	a.Prototype(a)
	a.Construct(nsp)
	return a
}

// sessionAdapter keeps socket.io's in-memory adapter for everything but
// sessions.
type sessionAdapter struct {
	socket.Adapter
	g  *Gateway
	ns string
}

// PersistSession saves a socket that disconnected for a recoverable reason,
// with the rooms it was in at the end. It runs inside socket.io's close path,
// which may be inside a relay write, so the call to the rooms service happens
// in the background.
func (a *sessionAdapter) PersistSession(s *socket.SessionToPersist) {
	if c, ok := s.Data.(*client); ok {
		c.saveInBackground()
	}
}

// RestoreSession takes the session stored under the key in the client's
// position (offset), if any, and decides whether the client can be brought up
// to date from it; socket.io's own private session id is not needed. Returning nil gives the
// client a fresh session (it sees recovered === false).
func (a *sessionAdapter) RestoreSession(pid socket.PrivateSessionId, offset string) (*socket.Session, error) {
	ctx, cancel := context.WithTimeout(context.Background(), a.g.cfg.Limits.CallTimeout)
	defer cancel()
	key, client := wire.DecodePosition(offset)
	if key == "" {
		return nil, nil
	}
	resp, err := a.g.cfg.Rooms.TakeSession(ctx, &roomsv1.TakeSessionRequest{Namespace: a.ns, SessionId: key})
	if status.Code(err) == codes.NotFound || status.Code(err) == codes.InvalidArgument {
		return nil, nil
	}
	if err != nil {
		a.g.cfg.Log.Error("taking saved session failed", "namespace", a.ns, "err", err)
		return nil, nil
	}
	var rec savedSession
	if err := json.Unmarshal(resp.GetData(), &rec); err != nil {
		a.g.cfg.Log.Error("decoding saved session failed", "namespace", a.ns, "err", err)
		return nil, nil
	}
	pos := make(map[string]savedPlace, len(rec.Rooms))
	for room, place := range rec.Rooms {
		seen := max(place.Offset, client[room])
		r, err := a.g.cfg.Rooms.GetRoom(ctx, &roomsv1.GetRoomRequest{Namespace: a.ns, Room: room})
		if err == nil && r.GetRoom().GetEpoch() != place.Epoch {
			// Deleted and created again while the client was away: its
			// offsets belong to the old room, so the new one is replayed from
			// its start.
			a.g.cfg.Log.Info("room created again since the session was saved; replaying it from its start",
				"namespace", a.ns, "socket", rec.SID, "room", room)
			seen = 0
		}
		if err != nil || r.GetRoom().GetLastOffset() > seen+a.g.cfg.Limits.RecoveryMaxMessages {
			a.g.cfg.Log.Info("session not restored", "namespace", a.ns, "socket", rec.SID, "room", room, "err", err)
			return nil, nil
		}
		pos[room] = savedPlace{Offset: seen, Epoch: r.GetRoom().GetEpoch()}
	}
	return &socket.Session{
		SessionToPersist: &socket.SessionToPersist{
			Sid:   socket.SocketId(rec.SID),
			Pid:   pid,
			Rooms: types.NewSet[socket.Room](),
			Data:  &restored{user: rec.User, key: key, pos: pos, admitted: make(chan struct{})},
		},
	}, nil
}

// resume brings a restored socket back into its rooms and sends it what it
// missed, before any event of its own is handled.
func (g *Gateway) resume(ns *Namespace, s *socket.Socket, r *restored) {
	c := g.newClient(ns, s, r.user, r.key)
	s.SetData(c)
	c.listen(s)
	c.connected(s)
	for room, place := range r.pos {
		if err := c.rejoin(room, place); err != nil {
			g.cfg.Log.Error("restoring room failed", "namespace", ns.Name, "room", room, "socket", c.id, "err", err)
		}
	}
	ctx, cancel := c.callContext()
	c.save(ctx)
	cancel()
	close(c.ready)
	g.cfg.Log.Debug("session restored", "namespace", ns.Name, "socket", c.id, "user", r.user, "rooms", len(r.pos))
}

// rejoin puts a restored socket back in room, with every message after
// place's offset — or every message, should the room have been created again
// since place was read.
func (c *client) rejoin(room string, place savedPlace) error {
	ctx, cancel := context.WithTimeout(context.Background(), 4*c.g.cfg.Limits.CallTimeout)
	defer cancel()
	sub, err := c.g.cfg.Relay.Acquire(ctx, c.roomKey(room))
	if err != nil {
		return err
	}
	jr, err := c.g.cfg.Rooms.JoinRoom(ctx, c.joinRequest(room))
	if err == nil {
		seen := place.Offset
		if jr.GetRoom().GetEpoch() != place.Epoch {
			seen = 0
		}
		err = c.attach(ctx, room, sub, seen, jr.GetRoom())
	}
	if err != nil {
		c.g.cfg.Relay.Release(sub)
	}
	return err
}
