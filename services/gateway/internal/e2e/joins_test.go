package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestConcurrentJoinsOfANewRoom has many sockets join a room that does not
// exist yet, all at once, through one gateway: every join must succeed (the
// room is created once), and a message sent to the room then reaches every
// one of them. PARLEY_JOINERS sets how many (200 by default).
func TestConcurrentJoinsOfANewRoom(t *testing.T) {
	joiners := 200
	if n, err := strconv.Atoi(os.Getenv("PARLEY_JOINERS")); err == nil && n > 0 {
		joiners = n
	}
	s := startStack(t)
	_, url := s.gateway("127.0.0.1:0", "--event-rate", "1000")
	room := fmt.Sprintf("new-%d", time.Now().UnixNano())

	// Connect in parallel, so that the first sockets are not left unread
	// (and timed out for not answering pings) while the last connect.
	conns := make([]*websocket.Conn, joiners)
	var connecting sync.WaitGroup
	slots := make(chan struct{}, 32)
	for i := range conns {
		connecting.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(url, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
			if err != nil {
				t.Error(err)
				return
			}
			conns[i] = ws
			readUntil(t, ws, "0{")
			ws.WriteMessage(websocket.TextMessage, []byte("40"))
			readUntil(t, ws, "40{")
		})
	}
	connecting.Wait()
	for _, ws := range conns {
		if ws != nil {
			t.Cleanup(func() { ws.Close() })
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	failures := make(chan string, joiners)
	for _, ws := range conns {
		wg.Go(func() {
			<-start
			ws.WriteMessage(websocket.TextMessage, []byte(`421["join",`+strconv.Quote(room)+`]`))
			if ack := readUntil(t, ws, "431["); !strings.HasPrefix(ack, `431[{"ok":true`) {
				failures <- ack
			}
		})
	}
	close(start)
	wg.Wait()
	close(failures)
	n := 0
	for f := range failures {
		if n == 0 {
			t.Errorf("first failed join: %.200s", f)
		}
		n++
	}
	if n > 0 {
		t.Fatalf("%d of %d joins failed", n, joiners)
	}

	s.publisher(t, "/", room)("hello all")
	for i, ws := range conns {
		if msg := readUntil(t, ws, `42["receive message","hello all"`); msg == "" {
			t.Fatalf("socket %d got no message", i)
		}
	}
}

// readUntil returns the next frame starting with prefix, answering pings and
// skipping other frames; it fails the test after 20s.
func readUntil(t *testing.T, ws *websocket.Conn, prefix string) string {
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Errorf("waiting for %q: %v", prefix, err)
			return ""
		}
		if string(b) == "2" {
			ws.WriteMessage(websocket.TextMessage, []byte("3"))
			continue
		}
		if strings.HasPrefix(string(b), prefix) {
			return string(b)
		}
	}
}
