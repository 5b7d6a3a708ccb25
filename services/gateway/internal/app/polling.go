package app

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/zishang520/socket.io/servers/engine/v3"
)

// owedPollTTL is how long a poll sent along with a close packet may lag the
// close and still be answered with a noop rather than refused.
const owedPollTTL = 5 * time.Second

// checkPolling wraps an Engine.IO handler where the library's long-polling
// answers differ from what Engine.IO v4 requires:
//
//   - A POST whose payload is not Engine.IO v4 packets closes its session and
//     is answered 400 (the library would accept it and keep the session),
//     and one larger than maxBytes, the frame limit, closes it with 413 (the
//     library answers 413 but keeps the session, whose client has lost a
//     payload).
//   - A poll sent along with a close packet is answered with a noop, as it
//     is when it reaches the library first, also when the close is handled
//     first and the library would refuse the poll of the closed session.
//   - A poll sent after the packet that completes an upgrade to WebSocket is
//     refused, as it is when the library has read that packet, also when the
//     poll overtakes it (the library would answer it, with a close packet
//     or a noop).
func checkPolling(h http.Handler, clients func() engine.BaseServer, maxBytes int64) http.Handler {
	return &pollingGuard{next: h, clients: clients, maxBytes: maxBytes, polls: map[string]*poll{}, owed: map[string]struct{}{}}
}

type pollingGuard struct {
	next     http.Handler
	clients  func() engine.BaseServer
	maxBytes int64

	mu sync.Mutex
	// polls holds each session's poll that is in the library's hands.
	polls map[string]*poll
	// owed holds the sessions closed by their client while no poll was in
	// the library's hands: the poll sent along with the close, if any, is
	// still to be answered.
	owed map[string]struct{}
}

// poll is a poll handed to the library; its fields are guarded by
// pollingGuard.mu.
type poll struct {
	cancel context.CancelFunc
	// closed is set when a close packet of its session arrives: from then on
	// the poll is to be answered with a noop, by the library or by the guard.
	closed bool
	// answered is set when the library's answer goes out to the client.
	answered bool
}

func (g *pollingGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sid := q.Get("sid")
	if q.Get("transport") == "websocket" {
		g.next.ServeHTTP(&upgradeWriter{w: w}, r)
		return
	}
	if q.Get("transport") != "polling" || q.Get("EIO") != "4" || sid == "" {
		g.next.ServeHTTP(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet:
		g.servePoll(w, r, sid)
	case http.MethodPost:
		g.servePost(w, r, sid)
	default:
		g.next.ServeHTTP(w, r)
	}
}

func (g *pollingGuard) servePost(w http.ResponseWriter, r *http.Request, sid string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, g.maxBytes+1))
	r.Body.Close()
	if err != nil {
		http.Error(w, "reading the payload failed", http.StatusBadRequest)
		return
	}
	switch {
	case int64(len(body)) > g.maxBytes:
		closeSession(g.clients(), sid)
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		return
	case !validPayload(body):
		closeSession(g.clients(), sid)
		http.Error(w, "malformed Engine.IO payload", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if !hasClosePacket(body) {
		g.next.ServeHTTP(w, r)
		return
	}

	g.mu.Lock()
	p := g.polls[sid]
	if p != nil {
		p.closed = true
	} else if _, ok := g.clients().Clients().Load(sid); ok {
		g.owed[sid] = struct{}{}
		time.AfterFunc(owedPollTTL, func() {
			g.mu.Lock()
			delete(g.owed, sid)
			g.mu.Unlock()
		})
	}
	g.mu.Unlock()
	g.next.ServeHTTP(w, r)
	if p != nil {
		// A poll the library has not answered by now never will be: its
		// session is gone. Releasing it lets servePoll answer it.
		p.cancel()
	}
}

func (g *pollingGuard) servePoll(w http.ResponseWriter, r *http.Request, sid string) {
	g.mu.Lock()
	if _, ok := g.owed[sid]; ok {
		delete(g.owed, sid)
		g.mu.Unlock()
		writeNoop(w)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	p := &poll{cancel: cancel}
	g.polls[sid] = p
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		if g.polls[sid] == p {
			delete(g.polls, sid)
		}
		g.mu.Unlock()
	}()

	s, ok := g.clients().Clients().Load(sid)
	if !ok {
		g.next.ServeHTTP(w, r)
		return
	}
	// The library swaps the session's transport when the upgrade packet
	// arrives, and may then never answer a poll it was handling; the
	// upgrade releases the poll instead. (RemoveListener matches listeners
	// by code address, so it may remove another poll's release; but two
	// polls of a session at once are a client error the library closes
	// the session for, answering both.) Upgraded is checked after
	// subscribing, so that no upgrade goes unnoticed.
	release := func(...any) { cancel() }
	_ = s.Once("upgrade", release)
	defer s.RemoveListener("upgrade", release)
	if s.Upgraded() {
		refuseUpgraded(w)
		return
	}
	// A poll that overtook the upgrade packet (the library reads it on the
	// WebSocket's own goroutine) is refused once the packet is read, unless
	// the library's upgrade check, every 100ms, answers it with a noop
	// first. Holding polls of an upgrading session for the packet would
	// close that gap, but delay the upgrade of every client.
	g.next.ServeHTTP(&pollWriter{ResponseWriter: w, g: g, p: p, s: s}, r.WithContext(ctx))

	g.mu.Lock()
	closed, answered := p.closed, p.answered
	g.mu.Unlock()
	switch {
	case answered:
	case closed:
		writeNoop(w)
	case s.Upgraded():
		refuseUpgraded(w)
	}
}

// pollWriter passes the library's answer to a poll on, unless it is to be
// replaced: a refusal of a poll whose session was closed by its client
// meanwhile (servePoll answers it with a noop), or any answer once the
// session has upgraded to WebSocket (servePoll refuses the poll).
type pollWriter struct {
	http.ResponseWriter
	g *pollingGuard
	p *poll
	s engine.Socket
	// wroteHeader and drop belong to the one goroutine writing the answer.
	wroteHeader, drop bool
}

func (w *pollWriter) WriteHeader(code int) {
	w.wroteHeader = true
	w.g.mu.Lock()
	w.drop = w.p.closed && code != http.StatusOK || w.s.Upgraded()
	w.p.answered = !w.drop
	w.g.mu.Unlock()
	if !w.drop {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *pollWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.drop {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func refuseUpgraded(w http.ResponseWriter) {
	http.Error(w, "session upgraded to WebSocket", http.StatusBadRequest)
}

// writeNoop answers a poll with a noop packet, as the library answers the
// poll pending when its session closes.
func writeNoop(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "6")
}

// validPayload reports whether p is Engine.IO v4 long-polling packets:
// separated by the record separator, each a packet type (0 to 6) or "b" for
// a base64 binary message, followed by its data.
func validPayload(p []byte) bool {
	if len(p) == 0 {
		return true // nothing to misread; the library answers it
	}
	for packet := range strings.SplitSeq(string(p), "\x1e") {
		if packet == "" || !(packet[0] >= '0' && packet[0] <= '6' || packet[0] == 'b') {
			return false
		}
	}
	return true
}

// hasClosePacket reports whether the valid payload p holds a close packet.
func hasClosePacket(p []byte) bool {
	for packet := range strings.SplitSeq(string(p), "\x1e") {
		if packet != "" && packet[0] == '1' {
			return true
		}
	}
	return false
}

func closeSession(srv engine.BaseServer, sid string) {
	if s, ok := srv.Clients().Load(sid); ok {
		s.Close(true)
	}
}
