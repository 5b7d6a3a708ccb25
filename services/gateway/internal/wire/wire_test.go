package wire

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/parsers/engine/v3/parser"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
	"google.golang.org/protobuf/types/known/timestamppb"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
)

func TestEncodeMessage(t *testing.T) {
	m := &roomsv1.Message{Room: "r", Offset: 5, Sender: "alice", Payload: `{"text":"<hi>"}`, CreateTime: timestamppb.New(time.UnixMilli(42))}
	tests := []struct {
		name, nsp string
		msg       *roomsv1.Message
		want      string
	}{
		{"root namespace", "/", m, `2["receive message",{"text":"<hi>"},{"room":"r","id":"5","offset":5,"from":"alice","ts":42},"k|r=5"]`},
		{"other namespace", "/chat", m, `2/chat,["receive message",{"text":"<hi>"},{"room":"r","id":"5","offset":5,"from":"alice","ts":42},"k|r=5"]`},
		{"text that is not JSON", "/", &roomsv1.Message{Room: "r", Offset: 1, Payload: `say "hi"`, ClientMessageId: "c1", CreateTime: timestamppb.New(time.UnixMilli(0))},
			`2["receive message","say \"hi\"",{"room":"r","id":"c1","offset":1,"from":"","ts":0},"k|r=5"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := EncodeMessage(tt.nsp, NewMessage(tt.msg), "s1")
			if got := string(p.appendText(nil, "k", []place{newPlace("r", 5)})); got != tt.want {
				t.Errorf("packet\n got %s\nwant %s", got, tt.want)
			}
			if p.Session != "s1" || p.Room != "r" || p.Offset != tt.msg.GetOffset() {
				t.Errorf("packet header %+v", p)
			}
		})
	}
}

func TestEvent(t *testing.T) {
	p, err := Event("/chat", EventMemberJoined, Presence{Room: "r", User: "bob"})
	if err != nil || string(p.text) != `2/chat,["member joined",{"room":"r","user":"bob"}]` {
		t.Fatalf("Event = %q, %v", p.text, err)
	}
	if _, err := Event("/", "x", func() {}); err == nil {
		t.Fatal("an argument JSON cannot encode was accepted")
	}
}

// transport keeps what is written without flushing it until told.
// transport records what a socket would send, encoded by the Engine.IO
// parser the socket's transports use: a packet that would go out as binary
// fails the test.
type transport struct {
	t       *testing.T
	written []string
	done    []engine.SendCallback
}

func (tr *transport) Write(r io.Reader, _ *packet.Options, cb engine.SendCallback) engine.Socket {
	enc, err := parser.Parserv4().EncodePacket(&packet.Packet{Type: packet.MESSAGE, Data: r}, true)
	if err != nil {
		tr.t.Fatal(err)
	}
	text, ok := strings.CutPrefix(enc.String(), "4")
	if _, binary := enc.(*types.BytesBuffer); binary || !ok {
		tr.t.Fatalf("packet encoded as %T %q, want a text message", enc, enc.String())
	}
	tr.written = append(tr.written, text)
	tr.done = append(tr.done, cb)
	return nil
}

// textTransport also takes text as it is, as the gateway's websocket writer
// does, and copies it as TextWriter requires.
type textTransport struct{ transport }

func (tr *textTransport) WriteText(text []byte, done engine.SendCallback) {
	tr.written = append(tr.written, string(text))
	tr.done = append(tr.done, done)
}

// recorder is what tests write to: either kind of transport.
type recorder interface {
	Transport
	writes() []string
}

func (tr *transport) writes() []string { return tr.written }

// testTransports returns one transport of each kind, by name.
func testTransports(t *testing.T) map[string]recorder {
	return map[string]recorder{"reader": &transport{t: t}, "text": &textTransport{transport{t: t}}}
}

func (tr *transport) flush() {
	for _, cb := range tr.done {
		cb(nil)
	}
	tr.done = nil
}

func TestConnBoundsItsQueue(t *testing.T) {
	tr := &transport{t: t}
	slow := make(chan struct{}, 2)
	p := Packet{text: []byte(`2["x"]`)}
	m := func(off uint64) MessagePacket {
		return MessagePacket{Room: "b", Offset: off, open: `2["receive message",1,{}`}
	}
	// Room for two small packets and two messages, not one byte more.
	limit := 2*len(p.text) + len(`2["receive message",1,{},"key|a=3&b=1"]`) + len(`2["receive message",1,{},"key|a=3&b=2"]`)
	c := NewConn(tr, "key", limit, func() { slow <- struct{}{} })
	if !c.Write(p) || !c.Write(p) {
		t.Fatal("writes within the bound refused")
	}
	c.SetPos("a", 3)
	for off := uint64(1); off <= 2; off++ {
		if !c.WriteMessage(m(off), false) {
			t.Fatalf("message %d refused", off)
		}
	}
	if got := tr.written[3]; got != `2["receive message",1,{},"key|a=3&b=2"]` {
		t.Errorf("message carries %s", got)
	}
	if c.WriteMessage(m(3), false) {
		t.Fatal("a write beyond the bound was queued")
	}
	<-slow
	tr.flush()
	if c.Write(p) {
		t.Fatal("a slow socket is written again")
	}
	select {
	case <-slow:
		t.Fatal("onSlow called twice")
	case <-time.After(50 * time.Millisecond):
	}

	tr2 := &transport{t: t}
	c2 := NewConn(tr2, "key", len(p.text), func() { t.Error("a catch-up failed the socket") })
	for off := uint64(1); off <= 3; off++ {
		if !c2.WriteMessage(m(off), true) {
			t.Fatalf("catch-up message %d refused", off)
		}
	}
	tr2.flush()
	if !c2.Write(p) {
		t.Fatal("flushed bytes not given back")
	}
}

// TestConnHoldsAPresenceBurst queues, unflushed, the presence events a
// member of a room of 1,000 gets when everyone else leaves at once: a
// healthy socket whose writes have not gone out yet is not failed for it.
func TestConnHoldsAPresenceBurst(t *testing.T) {
	tr := &transport{t: t}
	c := NewConn(tr, "key", DefaultQueueBytes, func() { t.Error("socket failed by a presence burst") })
	for i := range 999 {
		p, err := Event("/", EventMemberLeft, Presence{Room: "room1", User: fmt.Sprintf("guest-%020d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if !c.Write(p) {
			t.Fatalf("presence event %d refused", i)
		}
	}
}

// TestConnPositions checks the position each message carries against
// EncodePosition of the socket's rooms as they stand, through joins, leaves
// and messages in rooms the socket holds in any order.
func TestConnPositions(t *testing.T) {
	for name, tr := range testTransports(t) {
		t.Run(name, func(t *testing.T) {
			c := NewConn(tr, "k", DefaultQueueBytes, func() { t.Error("failed") })
			want := map[string]uint64{}
			msg := func(room string, off uint64) MessagePacket {
				return MessagePacket{Room: room, Offset: off, open: `2["receive message",1,{}`}
			}
			steps := []struct {
				op   string // set, drop or message
				room string
				off  uint64
			}{
				{"set", "m", 4}, {"message", "m", 5}, {"set", "a b", 1}, {"message", "a b", 2},
				{"set", "z", 0}, {"message", "z", 1}, {"message", "m", 6}, {"drop", "a b", 0},
				{"message", "z", 2}, {"message", "new", 1}, {"drop", "m", 0}, {"drop", "gone", 0},
				{"message", "é&=", 9}, {"drop", "new", 0}, {"drop", "z", 0}, {"message", "é&=", 10},
			}
			var all []string
			for i, st := range steps {
				switch st.op {
				case "set":
					c.SetPos(st.room, st.off)
					want[st.room] = st.off
				case "drop":
					c.DropPos(st.room)
					delete(want, st.room)
				case "message":
					c.WriteMessage(msg(st.room, st.off), false)
					want[st.room] = st.off
					w := `2["receive message",1,{},"` + EncodePosition("k", want) + `"]`
					all = append(all, w)
					if got := tr.writes()[len(tr.writes())-1]; got != w {
						t.Fatalf("step %d: packet %s, want %s", i, got, w)
					}
				}
			}
			// Every packet is still as it was written, whatever buffers
			// later ones were built in.
			if fmt.Sprint(tr.writes()) != fmt.Sprint(all) {
				t.Fatalf("written %q, want %q", tr.writes(), all)
			}
		})
	}
}

// TestConnHoldsUntilOpen checks that a held Conn writes nothing until Open,
// then everything held in order, counted against the bound all along.
func TestConnHoldsUntilOpen(t *testing.T) {
	for name, tr := range testTransports(t) {
		t.Run(name, func(t *testing.T) {
			p := Packet{text: []byte(`2["x"]`)}
			msg := func(off uint64) MessagePacket {
				return MessagePacket{Room: "r", Offset: off, open: `2["receive message",1,{}`}
			}
			slow := make(chan struct{}, 1)
			c := NewConn(tr, "k", 3*len(p.text)+2*len(`2["receive message",1,{},"k|r=1"]`), func() { slow <- struct{}{} })
			c.Hold()
			c.Write(p)
			c.WriteMessage(msg(1), false)
			c.WriteMessage(msg(2), false)
			c.Write(p)
			if len(tr.writes()) != 0 {
				t.Fatalf("a held Conn wrote %q", tr.writes())
			}
			c.Open()
			c.Write(p)
			want := []string{`2["x"]`, `2["receive message",1,{},"k|r=1"]`, `2["receive message",1,{},"k|r=2"]`, `2["x"]`, `2["x"]`}
			if fmt.Sprint(tr.writes()) != fmt.Sprint(want) {
				t.Fatalf("written %q, want %q", tr.writes(), want)
			}
			if c.Write(p) {
				t.Fatal("held and written packets were not counted against the bound")
			}
			<-slow
		})
	}
}
