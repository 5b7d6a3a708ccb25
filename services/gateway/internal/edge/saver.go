package edge

import (
	"context"
	"sync"

	"google.golang.org/protobuf/proto"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
)

// Sessions are saved in batches: a crowd connecting, the periodic renewal of
// every connected socket, or a crowd disconnecting at once would otherwise
// make one rooms-service call and one write per socket. One call is in
// flight at a time; records that arrive meanwhile wait for the next, where a
// socket's newer record replaces its older one, so a socket's saves land in
// the order they were made.

// Bounds of one SaveSessions call: its records must fit the rooms service's
// message limit, which leaves room for one largest message (at least 64 KB).
const (
	saveBatchRecords = 500
	saveBatchBytes   = 48 << 10
)

type sessionID struct{ namespace, key string }

type pendingSave struct {
	req     *roomsv1.SaveSessionRequest
	waiters []chan error
}

type saver struct {
	g *Gateway

	mu       sync.Mutex
	pending  map[sessionID]*pendingSave
	inFlight map[sessionID]chan struct{} // closed once the call saving it returns
	running  bool
}

func newSaver(g *Gateway) *saver {
	return &saver{g: g, pending: map[sessionID]*pendingSave{}, inFlight: map[sessionID]chan struct{}{}}
}

// save queues req, replacing the socket's record not yet sent. With wait
// set, the returned channel gets the outcome of the call that saves it.
func (s *saver) save(req *roomsv1.SaveSessionRequest, wait bool) <-chan error {
	id := sessionID{req.GetNamespace(), req.GetSessionId()}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[id]
	if p == nil {
		p = &pendingSave{}
		s.pending[id] = p
	}
	p.req = req
	var done chan error
	if wait {
		done = make(chan error, 1)
		p.waiters = append(p.waiters, done)
	}
	if !s.running {
		s.running = true
		// Shutdown waits for bg: what was queued is saved first.
		s.g.bg.Go(s.run)
	}
	return done
}

// forget drops the socket's record not yet sent and waits, within ctx, for
// a call already saving it, so that a session deleted after forget stays
// deleted.
func (s *saver) forget(ctx context.Context, namespace, key string) {
	id := sessionID{namespace, key}
	s.mu.Lock()
	if p := s.pending[id]; p != nil {
		delete(s.pending, id)
		for _, w := range p.waiters {
			w <- errDisconnected
		}
	}
	flying := s.inFlight[id]
	s.mu.Unlock()
	if flying != nil {
		select {
		case <-flying:
		case <-ctx.Done():
		}
	}
}

// run sends the queued records, a batch per call, until none is left.
func (s *saver) run() {
	for {
		batch, done := s.take()
		if batch == nil {
			return
		}
		reqs := make([]*roomsv1.SaveSessionRequest, 0, len(batch))
		for _, p := range batch {
			reqs = append(reqs, p.req)
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.g.cfg.Limits.CallTimeout)
		_, err := s.g.cfg.Rooms.SaveSessions(ctx, &roomsv1.SaveSessionsRequest{Sessions: reqs})
		cancel()
		unwaited := 0
		for _, p := range batch {
			if len(p.waiters) == 0 {
				unwaited++
			}
			for _, w := range p.waiters {
				w <- err
			}
		}
		// A waiter logs its own failure; the rest are logged here.
		if err != nil && unwaited > 0 {
			s.g.cfg.Log.Error("saving sessions for recovery failed", "sessions", unwaited, "err", err)
		}
		s.mu.Lock()
		for _, p := range batch {
			delete(s.inFlight, sessionID{p.req.GetNamespace(), p.req.GetSessionId()})
		}
		s.mu.Unlock()
		close(done)
	}
}

// take moves the next batch out of pending and marks it in flight; nil when
// nothing is pending, which ends run.
func (s *saver) take() ([]*pendingSave, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		s.running = false
		return nil, nil
	}
	done := make(chan struct{})
	var batch []*pendingSave
	size := 0
	for id, p := range s.pending {
		n := proto.Size(p.req)
		if len(batch) == saveBatchRecords || (len(batch) > 0 && size+n > saveBatchBytes) {
			break
		}
		batch = append(batch, p)
		size += n
		delete(s.pending, id)
		s.inFlight[id] = done
	}
	return batch, done
}
