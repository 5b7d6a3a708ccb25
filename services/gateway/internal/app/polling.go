package app

import (
	"bytes"
	"io"
	"net/http"
	"strings"

	"github.com/zishang520/socket.io/servers/engine/v3"
)

// checkPolling wraps an Engine.IO handler: a long-polling POST whose payload
// is not Engine.IO v4 packets closes its session and is answered 400, as the
// protocol requires (the library would accept it and keep the session), and
// one larger than maxBytes, the frame limit, closes it with 413 (the library
// answers 413 but keeps the session, whose client has lost a payload).
func checkPolling(h http.Handler, clients func() engine.BaseServer, maxBytes int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		sid := q.Get("sid")
		if r.Method != http.MethodPost || q.Get("transport") != "polling" || q.Get("EIO") != "4" || sid == "" {
			h.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBytes+1))
		r.Body.Close()
		if err != nil {
			http.Error(w, "reading the payload failed", http.StatusBadRequest)
			return
		}
		switch {
		case int64(len(body)) > maxBytes:
			closeSession(clients(), sid)
			http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
			return
		case !validPayload(body):
			closeSession(clients(), sid)
			http.Error(w, "malformed Engine.IO payload", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	})
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

func closeSession(srv engine.BaseServer, sid string) {
	if s, ok := srv.Clients().Load(sid); ok {
		s.Close(true)
	}
}
