package loadgen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// The generator speaks websocket itself, over raw sockets that one epoll
// loop reads: with Go's netpoller, every frame would cost a goroutine wake-up
// and a second read that finds nothing, and on two cores shared with the
// servers the generator would cost as much CPU as the server it measures.

// Websocket opcodes (RFC 6455).
const (
	opContinuation = 0x0
	opText         = 0x1
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// frame is one websocket frame read from the server.
type frame struct {
	fin     bool
	opcode  byte
	payload []byte // aliases the buffer it was parsed from
}

// parseFrame parses the frame at the start of b, returning how many bytes it
// took, or ok false when b does not hold a whole frame yet. Servers do not
// mask their frames; a masked one is unmasked in place.
func parseFrame(b []byte) (f frame, n int, ok bool) {
	if len(b) < 2 {
		return frame{}, 0, false
	}
	f.fin = b[0]&0x80 != 0
	f.opcode = b[0] & 0x0f
	masked := b[1]&0x80 != 0
	size := uint64(b[1] & 0x7f)
	n = 2
	switch size {
	case 126:
		if len(b) < 4 {
			return frame{}, 0, false
		}
		size, n = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return frame{}, 0, false
		}
		size, n = binary.BigEndian.Uint64(b[2:]), 10
	}
	var key []byte
	if masked {
		if len(b) < n+4 {
			return frame{}, 0, false
		}
		key, n = b[n:n+4], n+4
	}
	if uint64(len(b)-n) < size {
		return frame{}, 0, false
	}
	f.payload = b[n : n+int(size)]
	if masked {
		for i := range f.payload {
			f.payload[i] ^= key[i%4]
		}
	}
	return f, n + int(size), true
}

// appendFrame appends a final client frame of opcode with payload. Clients
// must mask their frames; the generator uses the all-zero key, which leaves
// the payload as it is: masking protects intermediaries that a benchmark on
// loopback does not have, and servers accept any key.
func appendFrame(b []byte, opcode byte, payload []byte) []byte {
	b = append(b, 0x80|opcode)
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, 0, 0, 0, 0)
	return append(b, payload...)
}

// handshakeTimeout bounds each blocking read and write of a connection's
// opening: beyond it the server is failing, not slow.
const handshakeTimeout = 60 * time.Second

// dial opens a websocket to path on addr (ip:port). The socket is blocking,
// with handshakeTimeout on reads and writes, until the caller hands it to a
// poller; rest is what the server sent after its upgrade response.
func dial(addr netip.AddrPort, path string) (fd int, rest []byte, err error) {
	if !addr.Addr().Is4() {
		return -1, nil, fmt.Errorf("%v: IPv4 only", addr)
	}
	fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, nil, fmt.Errorf("socket: %w", err)
	}
	fail := func(err error) (int, []byte, error) {
		unix.Close(fd)
		return -1, nil, err
	}
	tv := unix.NsecToTimeval(handshakeTimeout.Nanoseconds())
	for _, opt := range []int{unix.SO_RCVTIMEO, unix.SO_SNDTIMEO} {
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, opt, &tv); err != nil {
			return fail(err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		return fail(err)
	}
	if err := retryEINTR(func() error {
		return unix.Connect(fd, &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()})
	}); err != nil {
		return fail(fmt.Errorf("connect %v: %w", addr, err))
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr.String() +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: cGFybGV5LWJlbmNoLWtleQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if err := writeAll(fd, []byte(req), time.Now().Add(handshakeTimeout)); err != nil {
		return fail(fmt.Errorf("upgrade request: %w", err))
	}
	var buf []byte
	chunk := make([]byte, 4096)
	for {
		n, err := readFD(fd, chunk)
		if err != nil {
			return fail(fmt.Errorf("upgrade response: %w", err))
		}
		buf = append(buf, chunk[:n]...)
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			if !bytes.HasPrefix(buf, []byte("HTTP/1.1 101")) {
				line, _, _ := bytes.Cut(buf, []byte("\r\n"))
				return fail(fmt.Errorf("upgrade refused: %q", line))
			}
			return fd, buf[i+4:], nil
		}
	}
}

var errEOF = errors.New("connection closed by the server")

// readFD reads once; a closed connection is errEOF.
func readFD(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Read(fd, b)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0:
			return 0, errEOF
		}
		return n, nil
	}
}

// writeAll writes b whole to fd, blocking or not: on a non-blocking socket
// whose buffer is full it waits a little and tries again, until deadline.
func writeAll(fd int, b []byte, deadline time.Time) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			if time.Now().After(deadline) {
				return fmt.Errorf("write: server not reading for %v", writeTimeout)
			}
			time.Sleep(time.Millisecond)
			continue
		case err != nil:
			return err
		}
		b = b[n:]
	}
	return nil
}

func retryEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}
