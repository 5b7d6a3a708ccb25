package loadgen

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// poller reads the sockets of its clients with one epoll loop.
type poller struct {
	s    *Session
	epfd int
	buf  []byte
}

func newPoller(s *Session) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	return &poller{s: s, epfd: epfd, buf: make([]byte, 256<<10)}, nil
}

// add watches fd, the socket of client id.
func (p *poller) add(fd, id int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(id)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("epoll add: %w", err)
	}
	return nil
}

// pollInterval is how often a poller with nothing to read checks whether
// its session is closing.
const pollInterval = 100

func (p *poller) run() {
	defer p.s.readers.Done()
	defer unix.Close(p.epfd)
	events := make([]unix.EpollEvent, 512)
	for !p.s.closing.Load() {
		n, err := unix.EpollWait(p.epfd, events, pollInterval)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			p.s.log.Error("epoll wait", "err", err)
			return
		}
		for _, ev := range events[:n] {
			p.readable(p.s.clients[ev.Fd])
		}
	}
}

// readable reads what a client's socket has, once: level-triggered epoll
// reports it again if more is left.
func (p *poller) readable(c *client) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	fd := int(c.fd.Load())
	if fd < 0 {
		return
	}
	n, err := readFD(fd, p.buf)
	if err == unix.EAGAIN {
		return
	}
	if err == nil {
		err = c.consume(p.buf[:n], fd, c.handle)
	}
	if err != nil {
		c.lost(err)
	}
}
