package e2e

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
)

// TestNoWindowPings checks that a chat message costs the gateway and the rooms
// service no HTTP/2 pings. gRPC's default flow control sizes its windows by
// pinging the peer whenever data arrives: at chat rates that was a ping and
// its answer, each a write and a wake-up of the other process, for nearly
// every message in each direction. Both sides set fixed windows instead.
func TestNoWindowPings(t *testing.T) {
	s := startStack(t)
	p := newFrameCounter(t, s.roomsAdr)
	_, base := s.gateway("127.0.0.1:0", "--rooms-addr", p.addr)
	c := dialGo(t, base, nil)
	for i := range 40 {
		c.mustOK("send message", "room1", map[string]any{"text": i})
	}
	// The messages went through the counter: a broken count cannot pass.
	if p.data[0].Load() == 0 || p.data[1].Load() == 0 {
		t.Fatalf("DATA frames seen: gateway %d, rooms service %d; want some each way", p.data[0].Load(), p.data[1].Load())
	}
	for i, from := range []string{"gateway", "rooms service"} {
		if n := p.pings[i].Load(); n != 0 {
			t.Errorf("the %s sent %d pings over 40 messages; want none", from, n)
		}
	}
}

// frameCounter is a TCP proxy to one HTTP/2 server that counts the DATA
// frames and the pings (not their answers) each side sends: index 0 is the
// client's side.
type frameCounter struct {
	addr        string
	data, pings [2]atomic.Int64
}

func newFrameCounter(t *testing.T, target string) *frameCounter {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &frameCounter{addr: l.Addr().String()}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
	)
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				in.Close()
				out.Close()
				return
			}
			conns = append(conns, in, out)
			mu.Unlock()
			wg.Go(func() { p.pipe(t, out, in, 0) })
			wg.Go(func() { p.pipe(t, in, out, 1) })
		}
	})
	return p
}

// pipe copies src to dst and counts the frames of side on the way.
func (p *frameCounter) pipe(t *testing.T, dst, src net.Conn, side int) {
	defer dst.Close()
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.count(t, pr, side)
		io.Copy(io.Discard, pr)
	}()
	_, _ = io.Copy(io.MultiWriter(dst, pw), src)
	pw.Close()
	<-done
}

func (p *frameCounter) count(t *testing.T, r io.Reader, side int) {
	if side == 0 {
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(r, preface); err != nil {
			return
		}
		if !bytes.Equal(preface, []byte(http2.ClientPreface)) {
			t.Errorf("the gateway's connection did not start with the HTTP/2 preface: %q", preface)
			return
		}
	}
	fr := http2.NewFramer(nil, r)
	fr.SetMaxReadFrameSize(1 << 24)
	for {
		f, err := fr.ReadFrame()
		var se http2.StreamError
		switch {
		case errors.As(err, &se):
			continue
		case err != nil:
			return
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			p.data[side].Add(1)
		case *http2.PingFrame:
			if !f.IsAck() {
				p.pings[side].Add(1)
			}
		}
	}
}
