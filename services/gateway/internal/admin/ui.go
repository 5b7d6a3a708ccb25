package admin

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Features the UI is told of: what it may offer. EMIT (sending any event to
// sockets) is not among them: a Parley client's events come from its rooms.
var (
	featuresReadOnly = []string{"AGGREGATED_EVENTS", "ALL_EVENTS"}
	featuresActions  = []string{"JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"}
)

// maxQueuedEvents bounds the events a UI may be held while its socket list
// is gathered.
const maxQueuedEvents = 10_000

// viewer is a UI connected to this gateway. Until it has been sent every
// gateway's sockets (ready), the events of the gateways that have answered
// wait in queued; those of the others are in their answers.
type viewer struct {
	sock    emitter
	fetch   string
	waiting map[string]bool // gateways whose sockets are awaited
	list    []json.RawMessage
	queued  [][]json.RawMessage
	ready   bool
	timer   *time.Timer
}

// emitter is what a viewer needs of its socket.
type emitter interface {
	Emit(ev string, args ...any) error
}

// admit signs the UI in; a session it may reconnect with is sent once it is
// connected.
func (s *Server) admit(sock *socket.Socket, next func(*socket.ExtendedError)) {
	session, err := s.auth.check(sock.Handshake().Auth)
	if err != nil {
		s.cfg.Log.Info("admin UI sign-in refused", "address", sock.Handshake().Address, "reason", err)
		// The data is what Parley's own refusals carry; some clients
		// cannot read a refusal without any.
		next(socket.NewExtendedError(err.Error(), map[string]any{"code": "unauthenticated"}))
		return
	}
	sock.SetData(session)
	next(nil)
}

func (s *Server) connected(sock *socket.Socket) {
	v := &viewer{sock: sock, fetch: newID(), waiting: map[string]bool{s.cfg.ServerID: true}}
	s.cfg.Log.Info("admin UI connected", "socket", sock.Id(), "address", sock.Handshake().Address)
	if session, _ := sock.Data().(string); session != "" {
		sock.Emit("session", session)
	}
	features := featuresActions
	if s.cfg.ReadOnly {
		features = featuresReadOnly
	}
	sock.Emit("config", map[string]any{"supportedFeatures": features})
	if !s.cfg.ReadOnly {
		sock.On("join", func(args ...any) { s.request("join", args) })
		sock.On("leave", func(args ...any) { s.request("leave", args) })
		sock.On("_disconnect", func(args ...any) { s.request("disconnect", args) })
	}
	sock.On("disconnect", func(...any) { s.drop(v) })

	now := time.Now()
	s.mu.Lock()
	for id, seen := range s.gateways {
		if now.Sub(seen) < aliveFor {
			v.waiting[id] = true
		}
	}
	s.uis[v] = struct{}{}
	s.fetches[v.fetch] = v
	v.timer = time.AfterFunc(gatherFor, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.finish(v)
	})
	s.mu.Unlock()
	if !sock.Connected() {
		// Gone before it was recorded: its disconnect found nothing to drop.
		s.drop(v)
		return
	}
	s.watch()
	s.out.send(&report{Fetch: v.fetch})
}

// drop forgets a UI that disconnected; with the last one goes the record of
// which gateway holds the sockets shown.
func (s *Server) drop(v *viewer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.uis[v]; !ok {
		return
	}
	delete(s.uis, v)
	delete(s.fetches, v.fetch)
	v.timer.Stop()
	if len(s.uis) == 0 {
		clear(s.owners)
	}
}

// request passes a UI's action to every gateway. The UI sends join and
// leave as (nsp, room, filter) and _disconnect as (nsp, close, filter).
func (s *Server) request(op string, args []any) {
	a := action{Op: op}
	var ok bool
	if a.Nsp, ok = arg[string](args, 0); !ok {
		return
	}
	if op == "disconnect" {
		a.Close, _ = arg[bool](args, 1)
	} else if a.Room, ok = arg[string](args, 1); !ok || a.Room == "" {
		return
	}
	a.Filter, _ = arg[string](args, 2)
	s.cfg.Log.Info("admin UI action", "op", a.Op, "namespace", a.Nsp, "room", a.Room, "filter", a.Filter, "close", a.Close)
	s.out.send(&report{Do: &a})
}

func arg[T any](args []any, i int) (T, bool) {
	var zero T
	if i >= len(args) {
		return zero, false
	}
	v, ok := args[i].(T)
	return v, ok
}

// receive handles a report from the bus, this gateway's own included.
func (s *Server) receive(r *report) {
	now := time.Now()
	s.mu.Lock()
	if _, known := s.gateways[r.From]; !known && r.From != s.cfg.ServerID && len(s.uis) > 0 {
		// A gateway started, or came back after its sockets were taken
		// off the UIs here for its silence: its sockets are asked for.
		s.out.send(&report{Offer: true})
	}
	if r.From == s.cfg.ServerID && now.Sub(s.gateways[r.From]) >= aliveFor {
		// The bus is back after an outage: the others, silent because of
		// it, get as long to report again as a gateway that just started.
		for id := range s.gateways {
			s.gateways[id] = now
		}
	}
	s.gateways[r.From] = now
	s.mu.Unlock()
	switch {
	case r.Stats != nil:
		s.mu.Lock()
		// Stats carry no socket state: no UI need wait for them.
		for v := range s.uis {
			v.sock.Emit("server_stats", r.Stats)
		}
		s.mu.Unlock()
		if r.Watchers > 0 && s.watch() {
			// The sockets that connected while nobody watched were not
			// reported, and a UI that connected before this gateway heard
			// of it (its list was not asked of this gateway) would never
			// show them.
			s.answer("")
		}
	case len(r.Events) > 0:
		s.deliver(r.From, r.Events)
	case r.Fetch != "":
		s.watch()
		s.answer(r.Fetch)
	case r.Sockets != nil:
		s.gathered(r.From, r.Sockets)
	case r.Do != nil:
		s.act(r.Do)
	case r.Offer:
		s.answer("")
	}
}

func (s *Server) deliver(from string, events []json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.uis) == 0 {
		return
	}
	parsed := make([][]json.RawMessage, 0, len(events))
	for _, e := range events {
		var parts []json.RawMessage
		if json.Unmarshal(e, &parts) == nil && len(parts) > 0 {
			parsed = append(parsed, parts)
			s.track(from, parts)
		}
	}
	for v := range s.uis {
		switch {
		case v.ready:
			for _, e := range parsed {
				emit(v.sock, e)
			}
		case v.waiting[from]:
			// Its answer, still to come, shows what these did.
		case len(v.queued)+len(parsed) <= maxQueuedEvents:
			v.queued = append(v.queued, parsed...)
		}
	}
}

func emit(sock emitter, event []json.RawMessage) {
	var name string
	if json.Unmarshal(event[0], &name) != nil {
		return
	}
	args := make([]any, len(event)-1)
	for i, a := range event[1:] {
		args[i] = a
	}
	sock.Emit(name, args...)
}

// maxListed bounds the sockets one gateway lists for a UI: the list is
// sent whole, and past a few thousand sockets it would outgrow the outbox
// (maxQueued) and the browser's patience alike.
const maxListed = 5000

// answer sends this gateway's sockets to the UI that asked for them with
// fetch, or, with none, to every UI, in reports that fit the bus.
func (s *Server) answer(fetch string) {
	var (
		part []json.RawMessage
		size int
	)
	sockets := s.sockets.Sockets()
	if len(sockets) > maxListed {
		s.cfg.Log.Warn("admin UI shown only part of this gateway's sockets", "sockets", len(sockets), "listed", maxListed)
		sockets = sockets[:maxListed]
	}
	for _, sk := range sockets {
		b := s.fit(sk)
		if len(part) > 0 && size+len(b) > s.cfg.MaxReport-256 {
			s.out.send(&report{Sockets: &socketList{Fetch: fetch, List: part}})
			part, size = nil, 0
		}
		part = append(part, b)
		size += len(b) + 1
	}
	s.out.send(&report{Sockets: &socketList{Fetch: fetch, List: part, Last: true}})
}

// fit encodes a socket for the bus, without its handshake's headers and
// query should they not fit in a report.
func (s *Server) fit(sk Socket) json.RawMessage {
	b := mustJSON(sk)
	if len(b) > s.cfg.MaxReport/2 {
		sk.Handshake.Headers = map[string]any{"(not shown)": fmt.Sprintf("%d bytes", len(b))}
		sk.Handshake.Query = map[string]any{}
		sk.Data = map[string]any{}
		b = mustJSON(sk)
	}
	return b
}

func (s *Server) gathered(from string, l *socketList) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// UIs already showing a socket are not told of it again.
	var fresh []json.RawMessage
	for _, sk := range l.List {
		if !s.own(from, sk) {
			fresh = append(fresh, sk)
		}
	}
	if l.Fetch == "" {
		// Offered to every UI: see receive.
		for v := range s.uis {
			s.offer(v, from, l, fresh)
		}
		return
	}
	if v := s.fetches[l.Fetch]; v != nil {
		s.offer(v, from, l, fresh)
	}
}

// offer gives a UI a gateway's socket list: as part of its own list if it
// is still gathering one, otherwise the sockets it does not show yet, at
// once. Called with s.mu held.
func (s *Server) offer(v *viewer, from string, l *socketList, fresh []json.RawMessage) {
	if v.ready {
		ts := mustJSON(timestamp(time.Now()))
		for _, sk := range fresh {
			emit(v.sock, []json.RawMessage{mustJSON("socket_connected"), sk, ts})
		}
		return
	}
	v.list = append(v.list, l.List...)
	if l.Last && l.Fetch == v.fetch {
		delete(v.waiting, from)
		if len(v.waiting) == 0 {
			s.finish(v)
		}
	}
}

// finish sends a UI the sockets gathered and the events held meanwhile.
// Called with s.mu held.
func (s *Server) finish(v *viewer) {
	if v.ready {
		return
	}
	v.ready = true
	v.timer.Stop()
	list := v.list
	if list == nil {
		list = []json.RawMessage{}
	}
	v.sock.Emit("all_sockets", list)
	for _, e := range v.queued {
		emit(v.sock, e)
	}
	v.list, v.queued = nil, nil
}

// act carries out a UI's action on this gateway's sockets. Joins and
// leaves call the rooms service, off the bus's goroutine.
func (s *Server) act(a *action) {
	switch a.Op {
	case "disconnect":
		s.sockets.Disconnect(a.Nsp, a.Filter, a.Close)
	case "join", "leave":
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if a.Op == "join" {
				s.sockets.Join(ctx, a.Nsp, a.Filter, a.Room)
			} else {
				s.sockets.Leave(ctx, a.Nsp, a.Filter, a.Room)
			}
		}()
	}
}

// sendStats reports this gateway's server_stats, as the instrument's are.
func (s *Server) sendStats() {
	counts, polling := s.sockets.Counts()
	s.mu.Lock()
	watchers := len(s.uis)
	s.mu.Unlock()
	counts[s.cfg.Namespace] = watchers
	type nsCount struct {
		Name         string `json:"name"`
		SocketsCount int    `json:"socketsCount"`
	}
	namespaces := make([]nsCount, 0, len(counts))
	for name, n := range counts {
		namespaces = append(namespaces, nsCount{name, n})
	}
	slices.SortFunc(namespaces, func(a, b nsCount) int { return cmp.Compare(a.Name, b.Name) })
	host, _ := os.Hostname()
	stats := map[string]any{
		"serverId":            s.cfg.ServerID,
		"hostname":            host,
		"pid":                 os.Getpid(),
		"uptime":              time.Since(s.started).Seconds(),
		"clientsCount":        s.clients(),
		"pollingClientsCount": polling,
		"aggregatedEvents":    s.agg.take(),
		"namespaces":          namespaces,
	}
	s.out.send(&report{Stats: mustJSON(stats), Watchers: watchers})
}

// The gateway tells the server of its sockets with the methods below; each
// returns at once unless a UI may be watching.

// SocketConnected reports a socket that connected.
func (s *Server) SocketConnected(describe func() Socket) {
	s.agg.add("rawConnection", "")
	if s.Watching() {
		s.out.event(mustJSON([]any{"socket_connected", s.fit(describe()), timestamp(time.Now())}))
	}
}

// SocketUpdated reports a socket whose transport changed (upgraded).
func (s *Server) SocketUpdated(nsp, id, transport string) {
	if s.Watching() {
		s.out.event(mustJSON([]any{"socket_updated", map[string]string{"id": id, "nsp": nsp, "transport": transport}}))
	}
}

// SocketDisconnected reports a socket that disconnected, and why.
func (s *Server) SocketDisconnected(nsp, id, reason string) {
	s.agg.add("rawDisconnection", reason)
	if s.Watching() {
		s.out.event(mustJSON([]any{"socket_disconnected", nsp, id, reason, timestamp(time.Now())}))
	}
}

// RoomJoined reports a socket that joined a room.
func (s *Server) RoomJoined(nsp, room, id string) {
	if s.Watching() {
		s.out.event(mustJSON([]any{"room_joined", nsp, room, id, timestamp(time.Now())}))
	}
}

// RoomLeft reports a socket that left a room (disconnecting leaves them
// all).
func (s *Server) RoomLeft(nsp, room, id string) {
	if s.Watching() {
		s.out.event(mustJSON([]any{"room_left", nsp, room, id, timestamp(time.Now())}))
	}
}

// EventReceived reports an event a socket sent: its name and arguments,
// without the ack. One too big for the bus is shown by its size.
func (s *Server) EventReceived(nsp, id, name string, args []any) {
	if !s.Watching() {
		return
	}
	now := timestamp(time.Now())
	b, err := json.Marshal([]any{"event_received", nsp, id, append([]any{name}, args...), now})
	if err != nil || len(b) > s.cfg.MaxReport/2 {
		b = mustJSON([]any{"event_received", nsp, id, []any{name, fmt.Sprintf("(%d bytes, not shown)", len(b))}, now})
	}
	s.out.event(b)
}
