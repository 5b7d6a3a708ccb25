package server

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

// maxStreamPublishes bounds the publishes of one stream in flight at once:
// beyond it the stream is read no further until some are answered, and HTTP/2
// flow control holds the caller back.
const maxStreamPublishes = 1024

// PublishStream publishes each request read from the stream as Publish does,
// each on its own goroutine so that the publishes of many clients share a
// commit. Each request is checked first by Deps.CheckPublish, which stands in
// for what the interceptors do to a unary call (rate limit, validation); a
// failed request is answered with its error and the stream goes on.
func (s *Rooms) PublishStream(stream grpc.BidiStreamingServer[roomsv1.PublishStreamRequest, roomsv1.PublishStreamResponse]) error {
	ctx := stream.Context()
	ps := &publishStream{stream: stream, slots: make(chan struct{}, maxStreamPublishes)}
	read := make(chan error, 1)
	go func() { read <- ps.read(ctx, s) }()
	var err error
	select {
	case err = <-read:
	case <-s.d.Stopping:
		err = status.Error(codes.Unavailable, "the rooms service is shutting down: publish on a new stream")
	}
	ps.close()
	return err
}

type publishStream struct {
	stream grpc.BidiStreamingServer[roomsv1.PublishStreamRequest, roomsv1.PublishStreamResponse]
	slots  chan struct{} // one per publish in flight

	mu      sync.Mutex
	closed  bool // the handler is returning: nothing more is started
	running sync.WaitGroup

	sendMu sync.Mutex
}

// read starts a publish per request until the stream ends or fails; close
// then waits for the publishes it started. A clean end of the caller's side
// returns nil.
func (ps *publishStream) read(ctx context.Context, s *Rooms) error {
	for {
		req, err := ps.stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case ps.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		ps.mu.Lock()
		if ps.closed {
			ps.mu.Unlock()
			return nil
		}
		ps.running.Add(1)
		ps.mu.Unlock()
		go func() {
			defer ps.running.Done()
			resp := s.publishOne(ctx, req)
			ps.sendMu.Lock()
			// A failed send means the stream is gone: its context ends
			// and the reader stops.
			_ = ps.stream.Send(resp)
			ps.sendMu.Unlock()
			<-ps.slots
		}()
	}
}

// close starts nothing more and waits for the publishes started, so that
// every request read is answered before the handler returns.
func (ps *publishStream) close() {
	ps.mu.Lock()
	ps.closed = true
	ps.mu.Unlock()
	ps.running.Wait()
}

// publishOne publishes one request of a stream and returns its answer. It
// runs on a goroutine of its own, out of reach of the recovery interceptor,
// so it turns a panic into an answer itself, with the interceptor's handler.
func (s *Rooms) publishOne(ctx context.Context, req *roomsv1.PublishStreamRequest) (resp *roomsv1.PublishStreamResponse) {
	resp = &roomsv1.PublishStreamResponse{Id: req.GetId()}
	defer func() {
		if p := recover(); p != nil {
			st := status.Convert(PanicHandler(s.d.Log)(ctx, p))
			resp = &roomsv1.PublishStreamResponse{Id: req.GetId(), Code: int32(st.Code()), Message: st.Message()}
		}
	}()
	err := status.Error(codes.InvalidArgument, "publish: missing")
	if p := req.GetPublish(); p != nil {
		err = nil
		if s.d.CheckPublish != nil {
			err = s.d.CheckPublish(ctx, p)
		}
		if err == nil {
			resp.Published, err = s.Publish(ctx, p)
		}
	}
	if err != nil {
		st := status.Convert(err)
		resp.Code, resp.Message = int32(st.Code()), st.Message()
	}
	return resp
}
