package edge

import (
	"context"
	"slices"

	"github.com/parleyhq/parley/services/gateway/internal/admin"
	"github.com/parleyhq/parley/services/kit/requestid"
)

// Observer is told of sockets coming and going, their rooms and the events
// they send: the Admin UI's view (package admin). Calls are made on the
// sockets' own paths, so they must return at once.
type Observer interface {
	// SocketConnected is given a function describing the socket, called
	// only if someone is watching.
	SocketConnected(describe func() admin.Socket)
	SocketUpdated(nsp, id, transport string)
	SocketDisconnected(nsp, id, reason string)
	RoomJoined(nsp, room, id string)
	RoomLeft(nsp, room, id string)
	EventReceived(nsp, id, name string, args []any)
}

// unobserved is the Observer of a gateway without the Admin UI.
type unobserved struct{}

func (unobserved) SocketConnected(func() admin.Socket)         {}
func (unobserved) SocketUpdated(string, string, string)        {}
func (unobserved) SocketDisconnected(string, string, string)   {}
func (unobserved) RoomJoined(string, string, string)           {}
func (unobserved) RoomLeft(string, string, string)             {}
func (unobserved) EventReceived(string, string, string, []any) {}

var _ admin.Sockets = (*Gateway)(nil)

// describe is the socket as the Admin UI shows it.
func (c *client) describe() admin.Socket {
	c.mu.Lock()
	rooms := make([]string, 0, len(c.rooms)+1)
	for r := range c.rooms {
		rooms = append(rooms, r)
	}
	c.mu.Unlock()
	slices.Sort(rooms)
	// In socket.io every socket is in a room of its own id.
	rooms = append([]string{c.id}, rooms...)
	conn := c.sock.Conn()
	return admin.Socket{
		ID: c.id, ClientID: admin.ClientID(string(conn.Id())), Transport: conn.Transport().Name(), Nsp: c.ns.Name,
		Data: map[string]any{"user": c.user}, Handshake: admin.NewHandshake(c.sock.Handshake()), Rooms: rooms,
	}
}

// matching returns the connected sockets of namespace nsp that filter
// matches: those in the room it names, the socket whose id it is, or, empty,
// all of them.
func (g *Gateway) matching(nsp, filter string) []*client {
	var out []*client
	for _, c := range g.liveClients() {
		if c.ns.Name == nsp && c.sock != nil && (filter == "" || filter == c.id || c.joined(filter)) {
			out = append(out, c)
		}
	}
	return out
}

// Sockets describes the connected sockets, for the Admin UI.
func (g *Gateway) Sockets() []admin.Socket {
	var out []admin.Socket
	for _, c := range g.liveClients() {
		if c.sock != nil {
			out = append(out, c.describe())
		}
	}
	return out
}

// Counts returns the connected sockets of each namespace and how many
// connections are on long-polling, for the Admin UI.
func (g *Gateway) Counts() (map[string]int, int) {
	counts := make(map[string]int, len(g.cfg.Namespaces))
	for _, ns := range g.cfg.Namespaces {
		counts[ns.Name] = 0
	}
	polling := map[string]bool{}
	for _, c := range g.liveClients() {
		counts[c.ns.Name]++
		if c.sock != nil && c.sock.Conn().Transport().Name() == "polling" {
			polling[string(c.sock.Conn().Id())] = true
		}
	}
	return counts, len(polling)
}

// Disconnect disconnects the matching sockets, as the Admin UI asks:
// closeConn closes their connection too (the client reconnects and
// recovers), otherwise the client is told it was disconnected and stays so.
func (g *Gateway) Disconnect(nsp, filter string, closeConn bool) {
	for _, c := range g.matching(nsp, filter) {
		g.cfg.Log.Info("socket disconnected by the admin UI", "namespace", nsp, "socket", c.id, "user", c.user, "close", closeConn)
		c.sock.Disconnect(closeConn)
	}
}

// Join makes the matching sockets join room, as their own join would
// (within the namespace's rules), for the Admin UI.
func (g *Gateway) Join(ctx context.Context, nsp, filter, room string) {
	ctx = requestid.With(ctx, "admin-ui")
	for _, c := range g.matching(nsp, filter) {
		r, err := c.roomArg([]any{room})
		if err == nil {
			err = c.autoJoin(ctx, r)
		}
		if err != nil {
			g.cfg.Log.Warn("admin UI join failed", "namespace", nsp, "room", room, "socket", c.id, "err", err)
		}
	}
}

// Leave makes the matching sockets leave room, as their own leave would,
// for the Admin UI.
func (g *Gateway) Leave(ctx context.Context, nsp, filter, room string) {
	ctx = requestid.With(ctx, "admin-ui")
	for _, c := range g.matching(nsp, filter) {
		if !c.joined(room) {
			continue
		}
		if err := c.leave(ctx, room, asked); err != nil {
			g.cfg.Log.Warn("admin UI leave failed", "namespace", nsp, "room", room, "socket", c.id, "err", err)
			continue
		}
		c.save(ctx)
	}
}
