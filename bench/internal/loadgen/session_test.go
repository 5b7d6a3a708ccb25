package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakeServer is a socket.io chat server small enough to be trusted, with
// faults to inject: every dropEvery-th delivery is not sent, every
// dupEvery-th is sent twice, and the cutAfter-th delivery closes the
// receiving connection (which recovery must make good).
type fakeServer struct {
	faults

	mu         sync.Mutex
	sockets    map[string]*fakeSocket // by sid
	deliveries int
	dropped    int
	duplicated int
	nextSid    int
}

type faults struct{ dropEvery, dupEvery, cutAfter int }

type fakeSocket struct {
	sid    string
	room   string
	conn   *websocket.Conn // nil while disconnected
	missed [][]byte        // deliveries while disconnected, replayed on recovery
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	conn.WriteMessage(websocket.TextMessage, []byte(`0{"sid":"e","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`))
	var sock *fakeSocket
	for {
		_, p, err := conn.ReadMessage()
		if err != nil {
			f.mu.Lock()
			if sock != nil && sock.conn == conn {
				sock.conn = nil
			}
			f.mu.Unlock()
			return
		}
		switch {
		case bytes.HasPrefix(p, []byte("40")):
			var req struct{ Pid string }
			json.Unmarshal(p[2:], &req)
			f.mu.Lock()
			if old, ok := f.sockets[req.Pid]; ok && req.Pid != "" {
				sock = old // recovered: the sid doubles as the pid
			} else {
				f.nextSid++
				sock = &fakeSocket{sid: "s" + strconv.Itoa(f.nextSid), room: "room1"}
				f.sockets[sock.sid] = sock
			}
			sock.conn = conn
			conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `40{"sid":%q,"pid":%q}`, sock.sid, sock.sid))
			for _, m := range sock.missed {
				conn.WriteMessage(websocket.TextMessage, m)
			}
			sock.missed = nil
			f.mu.Unlock()
		case bytes.HasPrefix(p, []byte("42")):
			i := bytes.IndexByte(p, '[')
			ack := string(p[2:i])
			var args []json.RawMessage
			if err := json.Unmarshal(p[i:], &args); err != nil || len(args) < 2 {
				continue
			}
			var event, room string
			json.Unmarshal(args[0], &event)
			json.Unmarshal(args[1], &room)
			switch event {
			case "switch room", "join":
				f.mu.Lock()
				sock.room = room
				f.mu.Unlock()
			case "send message":
				f.broadcast(sock, room, args[2])
			}
			if ack != "" {
				f.mu.Lock() // broadcasts write to this connection too
				conn.WriteMessage(websocket.TextMessage, []byte("43"+ack+`[{"ok":true}]`))
				f.mu.Unlock()
			}
		}
	}
}

func (f *fakeServer) broadcast(from *fakeSocket, room string, msg json.RawMessage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sockets {
		if s == from || s.room != room {
			continue
		}
		f.deliveries++
		p := fmt.Appendf(nil, `42["receive message",%s,{"room":%q},"%s|%d"]`, msg, room, s.sid, f.deliveries)
		switch {
		case f.dropEvery > 0 && f.deliveries%f.dropEvery == 0:
			f.dropped++
			continue
		case s.conn == nil:
			s.missed = append(s.missed, p)
			continue
		case f.dupEvery > 0 && f.deliveries%f.dupEvery == 0:
			f.duplicated++
			s.conn.WriteMessage(websocket.TextMessage, p)
		}
		s.conn.WriteMessage(websocket.TextMessage, p)
		if f.deliveries == f.cutAfter {
			// A half-close, as a server that drops a connection sends what
			// it wrote first: a close with the client's messages unread
			// would reset it, and the client's kernel would discard the
			// deliveries it had not read yet.
			s.conn.UnderlyingConn().(interface{ CloseWrite() error }).CloseWrite()
			s.conn = nil
		}
	}
}

func TestSessionAgainstAFakeServer(t *testing.T) {
	tests := []struct {
		name   string
		faults faults
		check  func(t *testing.T, f *fakeServer, r PhaseResult, st Stats)
	}{
		{name: "every delivery once", check: func(t *testing.T, f *fakeServer, r PhaseResult, st Stats) {
			if r.Lost != 0 || r.Duplicated != 0 || r.Delivered != r.Expected {
				t.Errorf("lost %d, duplicated %d, delivered %d of %d", r.Lost, r.Duplicated, r.Delivered, r.Expected)
			}
		}},
		{name: "lost deliveries are counted", faults: faults{dropEvery: 7}, check: func(t *testing.T, f *fakeServer, r PhaseResult, st Stats) {
			if r.Lost != int64(f.dropped) || r.Lost == 0 {
				t.Errorf("lost %d, the server dropped %d", r.Lost, f.dropped)
			}
		}},
		{name: "duplicates are counted once each", faults: faults{dupEvery: 5}, check: func(t *testing.T, f *fakeServer, r PhaseResult, st Stats) {
			if r.Duplicated != int64(f.duplicated) || r.Duplicated == 0 || r.Lost != 0 {
				t.Errorf("duplicated %d (lost %d), the server duplicated %d", r.Duplicated, r.Lost, f.duplicated)
			}
		}},
		{name: "a cut connection recovers what it missed", faults: faults{cutAfter: 50}, check: func(t *testing.T, f *fakeServer, r PhaseResult, st Stats) {
			if r.Lost != 0 || st.Reconnects != 1 || st.Recovered != 1 || r.AfterRecovery == 0 {
				t.Errorf("lost %d, reconnects %d, recovered %d, delivered after recovering %d; want 0, 1, 1, > 0",
					r.Lost, st.Reconnects, st.Recovered, r.AfterRecovery)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeServer{faults: tt.faults, sockets: map[string]*fakeSocket{}}
			srv := httptest.NewServer(f)
			defer srv.Close()
			layout := Layout{Clients: 20, RoomSize: 5, RoomPrefix: "r", JoinEvent: "switch room"}
			s, err := Connect(context.Background(), slog.New(slog.DiscardHandler), strings.TrimPrefix(srv.URL, "http://"), layout, 8)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			r, err := s.Run(context.Background(), PhaseSpec{
				Rate: 400, Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond,
				DrainQuiet: 300 * time.Millisecond, DrainMax: 2 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			if r.Sent == 0 || r.Expected != r.Sent*4 || r.LatencySamples == 0 || r.WindowDeliveries == 0 || r.Misdelivered != 0 {
				t.Errorf("sent %d, expected %d, latency samples %d, window deliveries %d, misdelivered %d",
					r.Sent, r.Expected, r.LatencySamples, r.WindowDeliveries, r.Misdelivered)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			tt.check(t, f, r, s.Stats())
		})
	}
}
