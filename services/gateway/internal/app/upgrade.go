package app

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
)

// upgradeWriter stands in for the ResponseWriter of a websocket request.
// socket.io keeps a request's ResponseWriter for as long as its connection
// lives, and net/http's holds the connection's read and write buffers (8 KB),
// which a hijacked connection never uses again; once the connection is
// hijacked, this writer lets go of it.
type upgradeWriter struct {
	mu     sync.Mutex
	w      http.ResponseWriter // nil once hijacked
	header http.Header
}

var errNotHijackable = errors.New("the connection cannot be hijacked")

func (u *upgradeWriter) Header() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.w == nil {
		return u.header
	}
	return u.w.Header()
}

func (u *upgradeWriter) Write(b []byte) (int, error) {
	u.mu.Lock()
	w := u.w
	u.mu.Unlock()
	if w == nil {
		return 0, http.ErrHijacked
	}
	return w.Write(b)
}

func (u *upgradeWriter) WriteHeader(code int) {
	u.mu.Lock()
	w := u.w
	u.mu.Unlock()
	if w != nil {
		w.WriteHeader(code)
	}
}

func (u *upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	h, ok := u.w.(http.Hijacker)
	if !ok {
		return nil, nil, errNotHijackable
	}
	conn, rw, err := h.Hijack()
	if err == nil {
		u.w, u.header = nil, http.Header{}
	}
	return conn, rw, err
}
