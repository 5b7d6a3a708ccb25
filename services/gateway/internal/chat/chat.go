// Package chat maps socket.io events onto rooms service RPCs: it authenticates
// sockets per namespace, handles join, leave, switch room, send message,
// history and members with their acks, and hands live room events to the
// fan-out. Every failure reaches the client as an error ack.
package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/gateway/internal/fanout"
)

// Namespace is the configuration of one socket.io namespace.
type Namespace struct {
	// Name, such as "/" or "/chat".
	Name string `json:"name"`
	// Auth requires a JWT in the handshake's auth.token.
	Auth bool `json:"auth"`
	// DefaultRooms are joined by every socket on connect.
	DefaultRooms []string `json:"default_rooms"`
	// RoomPattern is the regular expression room names must match; empty
	// accepts any name the rooms service accepts.
	RoomPattern string `json:"room_pattern"`
	// CreateRooms lets a join create a room that does not exist.
	CreateRooms bool `json:"create_rooms"`

	roomRE *regexp.Regexp
}

// Limits bound what one socket may do.
type Limits struct {
	MaxMessageBytes int           // largest `send message` payload, JSON-encoded
	EventRate       float64       // events per second per socket (token bucket refill)
	EventBurst      int           // events a socket may send at once
	MaxRooms        int           // rooms one socket may be in
	HistoryOnJoin   int           // messages returned in a join ack
	CallTimeout     time.Duration // deadline of each rooms service call
}

// Metrics are the hooks the handlers report through.
type Metrics interface {
	Event(name, result string)
	Connected(namespace string, delta int)
	// Dropped counts sockets disconnected because their send queue was full.
	Dropped()
}

// Config is what a Gateway needs.
type Config struct {
	Namespaces []Namespace
	JWTSecret  []byte
	Limits     Limits
	// RecoveryWindow is how long a disconnected client's session can be
	// restored (socket.io connection state recovery).
	RecoveryWindow time.Duration
	Rooms          roomsv1.RoomsServiceClient
	Hub            *fanout.Hub
	Log            *slog.Logger
	Metrics        Metrics
}

// Gateway serves the configured namespaces on a socket.io server.
type Gateway struct {
	cfg Config
	// bg tracks rooms service calls made after a socket is gone (ending its
	// sessions, saving it for recovery), which shutdown must let finish.
	bg sync.WaitGroup
}

// Wait blocks until background calls finish or ctx ends.
func (g *Gateway) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		g.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// New checks the configuration and returns a Gateway.
func New(cfg Config) (*Gateway, error) {
	if len(cfg.Namespaces) == 0 {
		return nil, errors.New("no namespace configured")
	}
	seen := map[string]bool{}
	for i := range cfg.Namespaces {
		ns := &cfg.Namespaces[i]
		if !strings.HasPrefix(ns.Name, "/") || seen[ns.Name] {
			return nil, fmt.Errorf("namespace %q: names start with / and are unique", ns.Name)
		}
		seen[ns.Name] = true
		if ns.Auth && len(cfg.JWTSecret) == 0 {
			return nil, fmt.Errorf("namespace %q requires auth but no JWT secret is set", ns.Name)
		}
		if ns.RoomPattern != "" {
			re, err := regexp.Compile(ns.RoomPattern)
			if err != nil {
				return nil, fmt.Errorf("namespace %q: room_pattern: %w", ns.Name, err)
			}
			ns.roomRE = re
		}
	}
	return &Gateway{cfg: cfg}, nil
}

// Setup creates the default rooms in the rooms service, so that the first
// socket does not race to create them.
func (g *Gateway) Setup(ctx context.Context) error {
	for _, ns := range g.cfg.Namespaces {
		for _, room := range ns.DefaultRooms {
			_, err := g.cfg.Rooms.CreateRoom(ctx, &roomsv1.CreateRoomRequest{Namespace: ns.Name, Room: room})
			if err != nil && status.Code(err) != codes.AlreadyExists {
				return fmt.Errorf("create default room %s in %s: %w", room, ns.Name, err)
			}
		}
	}
	return nil
}

// Attach registers the namespaces on io. Namespaces not configured are
// refused by socket.io itself with "Invalid namespace".
func (g *Gateway) Attach(io *socket.Server) {
	for i := range g.cfg.Namespaces {
		ns := &g.cfg.Namespaces[i]
		nsp := io.Of(ns.Name, nil)
		nsp.Use(g.admit(ns))
		nsp.On("connection", func(args ...any) {
			s := args[0].(*socket.Socket)
			switch d := s.Data().(type) {
			case *client:
				d.connected()
			case *restored:
				g.resume(ns, s, d)
			}
		})
	}
}

// admit is the namespace middleware. It runs before the client is told it is
// connected: it authenticates the socket and joins its default rooms, so a
// client that sends as soon as it connects (as the classic chat does) is
// already in them, and so are the others it talks to.
func (g *Gateway) admit(ns *Namespace) socket.NamespaceMiddleware {
	return func(s *socket.Socket, next func(*socket.ExtendedError)) {
		user := "guest-" + string(s.Id())
		if ns.Auth {
			sub, code := g.authenticate(s)
			if code != "" {
				g.cfg.Log.Info("connection refused", "namespace", ns.Name, "reason", code)
				next(socket.NewExtendedError("unauthorized", map[string]any{"code": code}))
				return
			}
			user = sub
		}
		c := g.newClient(ns, s, user)
		c.listen()
		for _, room := range ns.DefaultRooms {
			if _, err := c.join(room); err != nil {
				g.cfg.Log.Error("auto-join failed", "namespace", ns.Name, "room", room, "socket", s.Id(), "err", err)
				c.release()
				next(socket.NewExtendedError("unavailable", map[string]any{"code": codeUnavailable}))
				return
			}
		}
		close(c.ready)
		s.SetData(c)
		next(nil)
	}
}

// authenticate checks the handshake's auth.token: an HS256 JWT with an
// expiry, whose subject is the user id. It returns the subject, or the code
// that explains the refusal to the client.
func (g *Gateway) authenticate(s *socket.Socket) (string, string) {
	raw, _ := s.Handshake().Auth["token"].(string)
	if raw == "" {
		return "", "missing_token"
	}
	tok, err := jwt.Parse(raw, func(*jwt.Token) (any, error) { return g.cfg.JWTSecret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	if err != nil {
		return "", "invalid_token"
	}
	sub, err := tok.Claims.GetSubject()
	if err != nil || sub == "" || len(sub) > 128 {
		return "", "invalid_token"
	}
	return sub, ""
}

// client is the gateway's state for one connected socket.
type client struct {
	g       *Gateway
	ns      *Namespace
	sock    *socket.Socket
	user    string
	conn    *fanout.Conn
	limiter *rate.Limiter

	mu     sync.Mutex
	rooms  map[string]uint64 // joined rooms -> the offset the join's history reached
	closed bool
	// ready is closed once the socket's default rooms (or, for a restored
	// session, its rooms and missed messages) are in place.
	ready chan struct{}
}

func (g *Gateway) newClient(ns *Namespace, s *socket.Socket, user string) *client {
	c := &client{
		g: g, ns: ns, sock: s, user: user, rooms: map[string]uint64{}, ready: make(chan struct{}),
		limiter: rate.NewLimiter(rate.Limit(g.cfg.Limits.EventRate), g.cfg.Limits.EventBurst),
	}
	c.conn = fanout.NewConn(string(s.Id()), user, s.Conn(), func() {
		g.cfg.Log.Warn("socket send queue full; disconnecting", "namespace", ns.Name, "socket", s.Id(), "user", c.user)
		g.cfg.Metrics.Dropped()
		s.Conn().Close(true)
	}, c.removed)
	return c
}

// listen registers the socket's event handlers. It runs before the client is
// told it is connected, so that an event sent right after connecting is never
// missed; handlers wait until the socket's set-up is done (c.ready).
func (c *client) listen() {
	s := c.sock
	c.on("join", c.handleJoin)
	c.on("leave", c.handleLeave)
	c.on("switch room", c.handleSwitch)
	c.on("send message", c.handleSend)
	c.on("history", c.handleHistory)
	c.on("members", c.handleMembers)
	c.on("rooms", c.handleRooms)
	s.OnAny(c.handleAny)
	s.On("disconnect", func(args ...any) { c.disconnect(args) })
}

// connected records a socket that completed its connection.
func (c *client) connected() {
	c.g.cfg.Metrics.Connected(c.ns.Name, 1)
	c.g.cfg.Log.Debug("socket connected", "namespace", c.ns.Name, "socket", c.sock.Id(), "user", c.user)
}

// release undoes the joins of a socket refused before it connected.
func (c *client) release() {
	c.mu.Lock()
	rooms := c.rooms
	c.rooms = map[string]uint64{}
	c.mu.Unlock()
	for room := range rooms {
		k := c.key(room)
		c.g.cfg.Hub.Remove(k, c.conn)
		c.g.cfg.Hub.Release(k)
	}
}

// known lists the events with handlers; the catch-all answers the rest.
var known = map[string]bool{"join": true, "leave": true, "switch room": true, "send message": true, "history": true, "members": true, "rooms": true}

// handler handles one event's arguments (without the ack) and returns the
// ack's fields, or an error.
type handler func(args []any) (map[string]any, error)

func (c *client) on(event string, h handler) {
	c.sock.On(event, func(raw ...any) {
		args, ack := splitAck(raw)
		var (
			fields map[string]any
			err    error
		)
		if err = c.awaitReady(); err == nil {
			if !c.limiter.Allow() {
				err = errorf(codeResourceExhausted, "too many events: the limit is %g per second", c.g.cfg.Limits.EventRate)
			} else {
				fields, err = h(args)
			}
		}
		c.reply(event, ack, fields, err)
	})
}

func (c *client) awaitReady() error {
	select {
	case <-c.ready:
		return nil
	default:
	}
	t := time.NewTimer(c.g.cfg.Limits.CallTimeout)
	defer t.Stop()
	select {
	case <-c.ready:
		return nil
	case <-t.C:
		return errorf(codeUnavailable, "the connection is still being set up; retry")
	}
}

func (c *client) handleAny(raw ...any) {
	event, _ := raw[0].(string)
	if known[event] {
		return
	}
	_, ack := splitAck(raw[1:])
	c.g.cfg.Log.Debug("unknown event", "namespace", c.ns.Name, "socket", c.sock.Id(), "event", event)
	c.reply("unknown", ack, nil, errorf(codeUnimplemented, "unknown event %q", event))
}

// reply sends the ack, if the client asked for one, and records the outcome.
func (c *client) reply(event string, ack socket.Ack, fields map[string]any, err error) {
	result := "ok"
	var payload map[string]any
	if err != nil {
		code, msg := toCode(err)
		result = code
		payload = map[string]any{"ok": false, "error": map[string]any{"code": code, "message": msg}}
		level := slog.LevelInfo
		if code == codeInternal || code == codeUnavailable {
			level = slog.LevelError
		}
		c.g.cfg.Log.Log(context.Background(), level, "event refused", "namespace", c.ns.Name, "socket", c.sock.Id(),
			"user", c.user, "event", event, "code", code, "err", msg)
	} else {
		payload = map[string]any{"ok": true}
		for k, v := range fields {
			payload[k] = v
		}
	}
	c.g.cfg.Metrics.Event(event, result)
	if ack != nil {
		ack([]any{payload}, nil)
	}
}

func splitAck(raw []any) ([]any, socket.Ack) {
	if n := len(raw); n > 0 {
		if ack, ok := raw[n-1].(socket.Ack); ok {
			return raw[:n-1], ack
		}
	}
	return raw, nil
}

func (c *client) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.g.cfg.Limits.CallTimeout)
}

// roomArg reads and checks the room name argument.
func (c *client) roomArg(args []any) (string, error) {
	if len(args) == 0 {
		return "", errorf(codeInvalidArgument, "a room name is required")
	}
	room, ok := args[0].(string)
	if !ok || room == "" || len(room) > 128 || strings.ContainsFunc(room, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", errorf(codeInvalidArgument, "the room must be a non-empty string of at most 128 characters without spaces")
	}
	if c.ns.roomRE != nil && !c.ns.roomRE.MatchString(room) {
		return "", errorf(codeInvalidArgument, "room name %q does not match %s", room, c.ns.RoomPattern)
	}
	return room, nil
}

func (c *client) joined(room string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.rooms[room]
	return ok
}

func (c *client) key(room string) fanout.Key { return fanout.Key{Namespace: c.ns.Name, Room: room} }

func (c *client) handleJoin(args []any) (map[string]any, error) {
	room, err := c.roomArg(args)
	if err != nil {
		return nil, err
	}
	return c.join(room)
}

// join makes the socket a member of the room and starts delivering it the
// room's events. The upstream subscription is registered before the room's
// state is read, so that every message is either in the ack's history or
// delivered live, never neither and never both.
func (c *client) join(room string) (map[string]any, error) {
	c.mu.Lock()
	_, already := c.rooms[room]
	full := len(c.rooms) >= c.g.cfg.Limits.MaxRooms
	c.mu.Unlock()
	if !already && full {
		return nil, errorf(codeResourceExhausted, "a socket may be in at most %d rooms", c.g.cfg.Limits.MaxRooms)
	}
	ctx, cancel := c.ctx()
	defer cancel()
	k := c.key(room)
	if !already {
		if err := c.g.cfg.Hub.Acquire(ctx, k); err != nil {
			if status.Code(err) != codes.NotFound || !c.ns.CreateRooms {
				return nil, err
			}
			if _, err := c.g.cfg.Rooms.CreateRoom(ctx, &roomsv1.CreateRoomRequest{Namespace: c.ns.Name, Room: room}); err != nil && status.Code(err) != codes.AlreadyExists {
				return nil, err
			}
			if err := c.g.cfg.Hub.Acquire(ctx, k); err != nil {
				return nil, err
			}
		}
	}
	release := func() {
		if !already {
			c.g.cfg.Hub.Release(k)
		}
	}
	jr, err := c.g.cfg.Rooms.JoinRoom(ctx, &roomsv1.JoinRoomRequest{Namespace: c.ns.Name, Room: room, UserId: c.user, SessionId: string(c.sock.Id())})
	if err != nil {
		release()
		return nil, err
	}
	last := jr.GetRoom().GetLastOffset()
	hist, err := c.g.cfg.Rooms.GetHistory(ctx, &roomsv1.GetHistoryRequest{
		Namespace: c.ns.Name, Room: room, Limit: uint32(c.g.cfg.Limits.HistoryOnJoin),
		Cursor: &roomsv1.GetHistoryRequest_BeforeOffset{BeforeOffset: last + 1},
	})
	if err != nil {
		release()
		return nil, err
	}
	members, err := c.g.cfg.Rooms.ListMembers(ctx, &roomsv1.ListMembersRequest{Namespace: c.ns.Name, Room: room})
	if err != nil {
		release()
		return nil, err
	}
	if !already {
		if err := c.g.cfg.Hub.Add(ctx, k, c.conn, last); err != nil {
			release()
			return nil, err
		}
		c.mu.Lock()
		c.rooms[room] = last
		c.mu.Unlock()
	}
	return map[string]any{
		"room":     room,
		"offset":   last,
		"messages": messagesJSON(hist.GetMessages()),
		"members":  membersJSON(members.GetMembers()),
	}, nil
}

func (c *client) handleLeave(args []any) (map[string]any, error) {
	room, err := c.roomArg(args)
	if err != nil {
		return nil, err
	}
	if !c.joined(room) {
		return nil, errorf(codeNotFound, "not in room %q", room)
	}
	return nil, c.leave(room)
}

// leave takes the socket out of the room. The user stays a member while
// another of their sockets is in it.
func (c *client) leave(room string) error {
	if !c.take(room) {
		return nil
	}
	k := c.key(room)
	c.g.cfg.Hub.Remove(k, c.conn)
	c.g.cfg.Hub.Release(k)
	ctx, cancel := c.ctx()
	defer cancel()
	es, err := c.g.cfg.Rooms.EndSession(ctx, &roomsv1.EndSessionRequest{Namespace: c.ns.Name, Room: room, UserId: c.user, SessionId: string(c.sock.Id())})
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return nil
		}
		return err
	}
	if es.GetMember().GetSessionCount() == 0 {
		_, err = c.g.cfg.Rooms.LeaveRoom(ctx, &roomsv1.LeaveRoomRequest{Namespace: c.ns.Name, Room: room, UserId: c.user})
	}
	return err
}

// take removes room from the socket's rooms and reports whether it was
// there: whoever takes it (leave, removal, disconnect) releases its fan-out
// reference, exactly once.
func (c *client) take(room string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.rooms[room]
	delete(c.rooms, room)
	return ok
}

// removed handles the fan-out's notice that the user is no longer a member of
// room, for instance after KickMember.
func (c *client) removed(room string) {
	if c.take(room) {
		c.g.cfg.Hub.Release(c.key(room))
		c.g.cfg.Log.Info("socket removed from room", "namespace", c.ns.Name, "room", room, "socket", c.sock.Id(), "user", c.user)
	}
}

func (c *client) handleSwitch(args []any) (map[string]any, error) {
	room, err := c.roomArg(args)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	var others []string
	for r := range c.rooms {
		if r != room {
			others = append(others, r)
		}
	}
	c.mu.Unlock()
	for _, r := range others {
		if err := c.leave(r); err != nil {
			return nil, err
		}
	}
	return c.join(room)
}

func (c *client) handleSend(args []any) (map[string]any, error) {
	room, err := c.roomArg(args)
	if err != nil {
		return nil, err
	}
	if len(args) < 2 {
		return nil, errorf(codeInvalidArgument, "a message is required")
	}
	var clientID string
	if len(args) >= 3 {
		opts, ok := args[2].(map[string]any)
		if !ok {
			return nil, errorf(codeInvalidArgument, "the third argument must be an object such as {id}")
		}
		if id, ok := opts["id"]; ok {
			s, ok := id.(string)
			if !ok || s == "" || len(s) > 128 {
				return nil, errorf(codeInvalidArgument, "id must be a non-empty string of at most 128 characters")
			}
			clientID = s
		}
	}
	if !c.joined(room) {
		return nil, errorf(codePermissionDenied, "join room %q before sending to it", room)
	}
	payload, err := json.Marshal(args[1])
	if err != nil {
		return nil, errorf(codeInvalidArgument, "the message is not JSON-encodable")
	}
	if len(payload) > c.g.cfg.Limits.MaxMessageBytes {
		return nil, errorf(codeResourceExhausted, "the message is %d bytes; the limit is %d", len(payload), c.g.cfg.Limits.MaxMessageBytes)
	}
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.g.cfg.Rooms.Publish(ctx, &roomsv1.PublishRequest{
		Namespace: c.ns.Name, Room: room, Sender: c.user, Payload: string(payload),
		ClientMessageId: clientID, SessionId: string(c.sock.Id()),
	})
	if err != nil {
		return nil, err
	}
	id := clientID
	if id == "" {
		id = fanout.MessageID(&roomsv1.Message{Offset: resp.GetOffset()})
	}
	return map[string]any{"id": id, "offset": resp.GetOffset(), "ts": resp.GetCreateTime().AsTime().UnixMilli()}, nil
}

func (c *client) handleHistory(args []any) (map[string]any, error) {
	room, err := c.roomArg(args)
	if err != nil {
		return nil, err
	}
	if !c.joined(room) {
		return nil, errorf(codePermissionDenied, "join room %q before reading its history", room)
	}
	req := &roomsv1.GetHistoryRequest{Namespace: c.ns.Name, Room: room}
	if len(args) >= 2 && args[1] != nil {
		opts, ok := args[1].(map[string]any)
		if !ok {
			return nil, errorf(codeInvalidArgument, "the second argument must be an object {before?, after?, limit?}")
		}
		for _, f := range []string{"before", "after", "limit"} {
			v, ok := opts[f]
			if !ok || v == nil {
				continue
			}
			n, ok := v.(float64)
			if !ok || n < 0 || n != float64(uint64(n)) || n > 1<<53 {
				return nil, errorf(codeInvalidArgument, "%s must be a non-negative integer", f)
			}
			switch f {
			case "before":
				req.Cursor = &roomsv1.GetHistoryRequest_BeforeOffset{BeforeOffset: uint64(n)}
			case "after":
				if req.Cursor != nil {
					return nil, errorf(codeInvalidArgument, "give before or after, not both")
				}
				req.Cursor = &roomsv1.GetHistoryRequest_AfterOffset{AfterOffset: uint64(n)}
			case "limit":
				if n > 1000 {
					return nil, errorf(codeInvalidArgument, "limit must be at most 1000")
				}
				req.Limit = uint32(n)
			}
		}
	}
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.g.cfg.Rooms.GetHistory(ctx, req)
	if err != nil {
		return nil, err
	}
	return map[string]any{"messages": messagesJSON(resp.GetMessages()), "has_more": resp.GetHasMore()}, nil
}

func (c *client) handleMembers(args []any) (map[string]any, error) {
	room, err := c.roomArg(args)
	if err != nil {
		return nil, err
	}
	if !c.joined(room) {
		return nil, errorf(codePermissionDenied, "join room %q before listing its members", room)
	}
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.g.cfg.Rooms.ListMembers(ctx, &roomsv1.ListMembersRequest{Namespace: c.ns.Name, Room: room})
	if err != nil {
		return nil, err
	}
	return map[string]any{"members": membersJSON(resp.GetMembers())}, nil
}

// handleRooms lists the namespace's rooms (the first 100 by name) with their
// member counts.
func (c *client) handleRooms([]any) (map[string]any, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.g.cfg.Rooms.ListRooms(ctx, &roomsv1.ListRoomsRequest{Namespace: c.ns.Name, PageSize: 100})
	if err != nil {
		return nil, err
	}
	rooms := make([]map[string]any, 0, len(resp.GetRooms()))
	for _, r := range resp.GetRooms() {
		if r.GetOptions().GetVisibility() == roomsv1.Visibility_VISIBILITY_PRIVATE {
			continue
		}
		rooms = append(rooms, map[string]any{"name": r.GetName(), "members": r.GetMemberCount()})
	}
	return map[string]any{"rooms": rooms}, nil
}

// disconnect leaves every room: a guest's membership ends with its socket; a
// signed-in user's session ends and the user stays a member, offline.
func (c *client) disconnect(args []any) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	rooms := make([]string, 0, len(c.rooms))
	for r := range c.rooms {
		rooms = append(rooms, r)
	}
	c.rooms = map[string]uint64{}
	c.mu.Unlock()
	reason, _ := firstString(args)
	c.g.cfg.Log.Debug("socket disconnected", "namespace", c.ns.Name, "socket", c.sock.Id(), "user", c.user, "reason", reason)
	c.g.cfg.Metrics.Connected(c.ns.Name, -1)
	// A transport can fail inside a write the fan-out makes while holding a
	// room's lock, and socket.io then runs this handler on that goroutine:
	// everything that takes the fan-out's locks happens elsewhere.
	c.g.bg.Go(func() {
		for _, room := range rooms {
			k := c.key(room)
			c.g.cfg.Hub.Remove(k, c.conn)
			c.g.cfg.Hub.Release(k)
		}
		ctx, cancel := c.ctx()
		defer cancel()
		for _, room := range rooms {
			var err error
			if c.ns.Auth {
				_, err = c.g.cfg.Rooms.EndSession(ctx, &roomsv1.EndSessionRequest{Namespace: c.ns.Name, Room: room, UserId: c.user, SessionId: string(c.sock.Id())})
			} else {
				_, err = c.g.cfg.Rooms.LeaveRoom(ctx, &roomsv1.LeaveRoomRequest{Namespace: c.ns.Name, Room: room, UserId: c.user})
			}
			if err != nil && status.Code(err) != codes.NotFound {
				c.g.cfg.Log.Error("ending session after disconnect failed", "namespace", c.ns.Name, "room", room, "user", c.user, "err", err)
			}
		}
	})
}

func firstString(args []any) (string, bool) {
	if len(args) == 0 {
		return "", false
	}
	s, ok := args[0].(string)
	return s, ok
}

func messagesJSON(msgs []*roomsv1.Message) []map[string]any {
	out := make([]map[string]any, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, map[string]any{
			"msg": fanout.Payload(m), "room": m.GetRoom(), "id": fanout.MessageID(m), "offset": m.GetOffset(),
			"from": m.GetSender(), "ts": m.GetCreateTime().AsTime().UnixMilli(),
		})
	}
	return out
}

func membersJSON(ms []*roomsv1.Member) []map[string]any {
	out := make([]map[string]any, 0, len(ms))
	for _, m := range ms {
		out = append(out, map[string]any{"user": m.GetUserId(), "online": m.GetOnline()})
	}
	return out
}
