package admin

import (
	"encoding/json"
	"time"
)

// A gateway that dies cannot say that its sockets are gone, and the UI
// would show them for good: the gateways that have a UI keep track of which
// gateway holds each socket shown, from the answers and events on the bus,
// and take the sockets of a gateway silent for aliveFor off their UIs. A
// socket recovered on another gateway keeps its id; it then belongs to that
// gateway and stays.

// unreachable is the disconnect reason the UI shows for such sockets.
const unreachable = "gateway unreachable"

type sockKey struct{ nsp, id string }

// owned is a socket shown to the UIs here: the gateway that holds it and
// its rooms.
type owned struct {
	gateway string
	rooms   map[string]bool
}

// own records a socket from gateway's answer or connect report, and
// reports whether the UIs here were known to show it already, held by that
// gateway. Called with s.mu held.
func (s *Server) own(gateway string, socket json.RawMessage) (known bool) {
	var sk struct {
		ID    string   `json:"id"`
		Nsp   string   `json:"nsp"`
		Rooms []string `json:"rooms"`
	}
	if json.Unmarshal(socket, &sk) != nil || sk.ID == "" {
		return false
	}
	k := sockKey{sk.Nsp, sk.ID}
	known = s.owners[k] != nil && s.owners[k].gateway == gateway
	o := &owned{gateway: gateway, rooms: map[string]bool{}}
	for _, r := range sk.Rooms {
		o.rooms[r] = true
	}
	s.owners[k] = o
	return known
}

// track follows one reported event's effect on the sockets shown. Called
// with s.mu held, only while a UI is connected here.
func (s *Server) track(gateway string, event []json.RawMessage) {
	var name string
	if json.Unmarshal(event[0], &name) != nil {
		return
	}
	args := make([]string, len(event)-1)
	for i, a := range event[1:] {
		json.Unmarshal(a, &args[i])
	}
	at := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	switch name {
	case "socket_connected":
		s.own(gateway, event[1])
	case "socket_disconnected": // nsp, id, reason, time
		if o := s.owners[sockKey{at(0), at(1)}]; o != nil && o.gateway == gateway {
			delete(s.owners, sockKey{at(0), at(1)})
		}
	case "room_joined", "room_left": // nsp, room, id, time
		if o := s.owners[sockKey{at(0), at(2)}]; o != nil && o.gateway == gateway {
			o.rooms[at(1)] = name == "room_joined"
		}
	}
}

// forgetSilent takes off the UIs here the sockets of the gateways that
// have reported nothing for aliveFor, and forgets those gateways. While this
// gateway's own reports do not come back either, the bus is what is down,
// not the others: nothing is taken off then.
func (s *Server) forgetSilent(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.gateways[s.cfg.ServerID]) >= aliveFor {
		return
	}
	silent := map[string]bool{}
	for id, seen := range s.gateways {
		if now.Sub(seen) >= aliveFor {
			silent[id] = true
			delete(s.gateways, id)
		}
	}
	if len(silent) == 0 {
		return
	}
	ts := timestamp(now)
	for k, o := range s.owners {
		if !silent[o.gateway] {
			continue
		}
		delete(s.owners, k)
		for v := range s.uis {
			if !v.ready {
				continue
			}
			v.sock.Emit("socket_disconnected", k.nsp, k.id, unreachable, ts)
			for room, in := range o.rooms {
				if in {
					v.sock.Emit("room_left", k.nsp, room, k.id, ts)
				}
			}
		}
	}
	for id := range silent {
		s.cfg.Log.Warn("admin UI: a gateway stopped reporting; its sockets are taken off the UI", "gateway", id)
	}
}
