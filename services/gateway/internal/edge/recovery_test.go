package edge

import (
	"encoding/json"
	"testing"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
)

// TestSessionSavedOnDisconnectKeepsItsRooms saves a socket for recovery as
// socket.io does on a recoverable close, then runs the disconnect that
// follows: the record holds the rooms the socket was in, although the
// disconnect empties them.
func TestSessionSavedOnDisconnectKeepsItsRooms(t *testing.T) {
	rooms, rel := &fakeRooms{}, newFakeRelay()
	c := newTestClient(t, Namespace{Name: "/", Auth: true}, testLimits, rooms, rel)
	rel.in(c, "a")
	c.saveInBackground()
	c.disconnect("transport close")
	if err := c.g.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(rooms.saved) != 1 {
		t.Fatalf("%d records saved, want 1", len(rooms.saved))
	}
	var rec savedSession
	if err := json.Unmarshal(rooms.saved[0], &rec); err != nil {
		t.Fatal(err)
	}
	if rec.User != "alice" || rec.SID != "sock1" || rec.Rooms["a"] != (savedPlace{Offset: 1, Epoch: "e1"}) {
		t.Fatalf("saved %+v", rec)
	}
}

// TestRestoreAcrossEpochs restores a session whose room is the one it left,
// or was deleted and created again meanwhile: the client resumes after its
// own offset in the first case, and from the new room's start in the second.
func TestRestoreAcrossEpochs(t *testing.T) {
	tests := []struct {
		name  string
		epoch string // the room's now
		want  savedPlace
	}{
		{"same room", "e1", savedPlace{Offset: 4, Epoch: "e1"}},
		{"room created again", "e2", savedPlace{Offset: 0, Epoch: "e2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stored, _ := json.Marshal(savedSession{SID: "sock1", User: "alice", Rooms: map[string]savedPlace{"a": {Offset: 2, Epoch: "e1"}}})
			rooms := &fakeRooms{stored: stored, room: &roomsv1.Room{Name: "a", LastOffset: 6, Epoch: tt.epoch}}
			c := newTestClient(t, Namespace{Name: "/"}, testLimits, rooms, newFakeRelay())
			a := &sessionAdapter{g: c.g, ns: "/"}
			sess, err := a.RestoreSession("pid", "key1|a=4")
			if err != nil || sess == nil {
				t.Fatalf("RestoreSession = %v, %v", sess, err)
			}
			r := sess.Data.(*restored)
			if r.user != "alice" || r.key != "key1" || r.pos["a"] != tt.want {
				t.Fatalf("restored %+v, want a at %+v", r, tt.want)
			}
		})
	}
}
