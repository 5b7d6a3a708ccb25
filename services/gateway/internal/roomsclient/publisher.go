package roomsclient

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
)

// Publisher is a RoomsServiceClient whose Publish goes over one PublishStream
// instead of a call per message: under load a unary call's headers, stream
// setup and interceptors cost the gateway and the rooms service more than
// the publish itself. The stream is opened when first needed and again after
// it ends; every other method is the wrapped client's.
type Publisher struct {
	roomsv1.RoomsServiceClient

	ctx    context.Context // streams are opened under it; Close ends it
	cancel context.CancelFunc

	mu      sync.Mutex
	cur     *pubStream // nil when none is open
	opening *openAttempt
}

// NewPublisher returns a Publisher over c. Close it to end its stream.
func NewPublisher(c roomsv1.RoomsServiceClient) *Publisher {
	ctx, cancel := context.WithCancel(context.Background())
	return &Publisher{RoomsServiceClient: c, ctx: ctx, cancel: cancel}
}

// Close ends the stream; publishes waiting for an answer fail.
func (p *Publisher) Close() { p.cancel() }

// Publish publishes req on the stream and waits for its answer or for ctx.
// It fails as the unary call would: with the request's own status, or with
// the stream's once the stream ends without answering (UNAVAILABLE when the
// rooms service went away). A publish whose answer was lost may have been
// stored; a retry with the same client_message_id is safe.
func (p *Publisher) Publish(ctx context.Context, req *roomsv1.PublishRequest, _ ...grpc.CallOption) (*roomsv1.PublishResponse, error) {
	s, err := p.stream(ctx)
	if err != nil {
		return nil, err
	}
	return s.publish(ctx, req)
}

// openAttempt is one opening of a stream, which callers arriving meanwhile
// wait for rather than open their own.
type openAttempt struct {
	done chan struct{}
	s    *pubStream
	err  error
}

// stream returns the open stream, opening one if there is none. The opening
// runs on its own goroutine, under the Publisher's context rather than the
// caller's, since the stream outlives the call; the caller waits for it only
// as long as ctx lets it.
func (p *Publisher) stream(ctx context.Context) (*pubStream, error) {
	p.mu.Lock()
	if s := p.cur; s != nil {
		p.mu.Unlock()
		return s, nil
	}
	a := p.opening
	if a == nil {
		a = &openAttempt{done: make(chan struct{})}
		p.opening = a
		go p.open(a)
	}
	p.mu.Unlock()
	select {
	case <-a.done:
		return a.s, a.err
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

func (p *Publisher) open(a *openAttempt) {
	ctx, cancel := context.WithCancel(p.ctx)
	st, err := p.RoomsServiceClient.PublishStream(ctx)
	p.mu.Lock()
	if err != nil {
		cancel()
		a.err = err
	} else {
		a.s = &pubStream{p: p, stream: st, cancel: cancel, waiting: map[uint64]chan<- pubResult{}}
		p.cur = a.s
		go a.s.receive()
	}
	p.opening = nil
	p.mu.Unlock()
	close(a.done)
}

// forget drops s once it has ended, so that the next publish opens another.
func (p *Publisher) forget(s *pubStream) {
	p.mu.Lock()
	if p.cur == s {
		p.cur = nil
	}
	p.mu.Unlock()
}

// pubStream is one open PublishStream and the publishes waiting on it.
type pubStream struct {
	p      *Publisher
	stream roomsv1.RoomsService_PublishStreamClient
	cancel context.CancelFunc

	sendMu sync.Mutex // a stream's Send must not run concurrently

	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan<- pubResult // by request id; nil once ended
	err     error                       // why the stream ended
}

type pubResult struct {
	resp *roomsv1.PublishResponse
	err  error
}

func (s *pubStream) publish(ctx context.Context, req *roomsv1.PublishRequest) (*roomsv1.PublishResponse, error) {
	answer := make(chan pubResult, 1)
	s.mu.Lock()
	if s.waiting == nil {
		err := s.err
		s.mu.Unlock()
		return nil, err
	}
	s.next++
	id := s.next
	s.waiting[id] = answer
	s.mu.Unlock()

	s.sendMu.Lock()
	err := s.stream.Send(&roomsv1.PublishStreamRequest{Id: id, Publish: req})
	s.sendMu.Unlock()
	// io.EOF means the stream has ended: receive learns why and answers
	// every waiting publish with it. Any other error left the request unsent.
	if err != nil && !errors.Is(err, io.EOF) {
		s.drop(id)
		return nil, status.Convert(err).Err()
	}
	select {
	case r := <-answer:
		return r.resp, r.err
	case <-ctx.Done():
		s.drop(id)
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// drop forgets a publish that no longer waits for its answer.
func (s *pubStream) drop(id uint64) {
	s.mu.Lock()
	delete(s.waiting, id)
	s.mu.Unlock()
}

// receive hands each answer to its publish until the stream ends.
func (s *pubStream) receive() {
	for {
		resp, err := s.stream.Recv()
		if err != nil {
			s.end(err)
			return
		}
		s.mu.Lock()
		answer, ok := s.waiting[resp.GetId()]
		delete(s.waiting, resp.GetId())
		s.mu.Unlock()
		if !ok {
			continue // its caller gave up
		}
		if code := codes.Code(resp.GetCode()); code != codes.OK {
			answer <- pubResult{err: status.Error(code, resp.GetMessage())}
		} else {
			answer <- pubResult{resp: resp.GetPublished()}
		}
	}
}

// end fails every publish still waiting with the reason the stream ended.
func (s *pubStream) end(err error) {
	if errors.Is(err, io.EOF) {
		err = status.Error(codes.Unavailable, "the rooms service ended the publish stream")
	} else {
		err = status.Convert(err).Err()
	}
	s.p.forget(s)
	s.mu.Lock()
	waiting := s.waiting
	s.waiting, s.err = nil, err
	s.mu.Unlock()
	for _, answer := range waiting {
		answer <- pubResult{err: err}
	}
	s.cancel()
}
