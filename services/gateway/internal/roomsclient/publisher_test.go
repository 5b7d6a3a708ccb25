package roomsclient_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/gateway/internal/roomsclient"
)

// streamServer is a rooms service whose PublishStream answers with serve,
// which gets the stream's requests and returns when the stream is to end.
type streamServer struct {
	roomsv1.UnimplementedRoomsServiceServer
	serve   func(reqs <-chan *roomsv1.PublishStreamRequest, send func(*roomsv1.PublishStreamResponse)) error
	mu      sync.Mutex
	streams int
}

func (s *streamServer) PublishStream(stream grpc.BidiStreamingServer[roomsv1.PublishStreamRequest, roomsv1.PublishStreamResponse]) error {
	s.mu.Lock()
	s.streams++
	s.mu.Unlock()
	reqs := make(chan *roomsv1.PublishStreamRequest)
	go func() {
		defer close(reqs)
		for {
			req, err := stream.Recv()
			if err != nil {
				return
			}
			select {
			case reqs <- req:
			case <-stream.Context().Done():
				return
			}
		}
	}()
	var mu sync.Mutex
	return s.serve(reqs, func(resp *roomsv1.PublishStreamResponse) {
		mu.Lock()
		defer mu.Unlock()
		_ = stream.Send(resp)
	})
}

func (s *streamServer) opened() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams
}

func start(t *testing.T, s *streamServer) *roomsclient.Publisher {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	roomsv1.RegisterRoomsServiceServer(srv, s)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p := roomsclient.NewPublisher(roomsv1.NewRoomsServiceClient(conn))
	t.Cleanup(p.Close)
	return p
}

// answer is the publish outcome the fake gives a request: its payload as the
// offset, or the code the payload names.
func answer(req *roomsv1.PublishStreamRequest) *roomsv1.PublishStreamResponse {
	resp := &roomsv1.PublishStreamResponse{Id: req.GetId()}
	n, err := strconv.ParseUint(req.GetPublish().GetPayload(), 10, 64)
	if err != nil {
		resp.Code, resp.Message = int32(codes.InvalidArgument), "payload "+req.GetPublish().GetPayload()
		return resp
	}
	resp.Published = &roomsv1.PublishResponse{Offset: n}
	return resp
}

func publish(payload string) *roomsv1.PublishRequest {
	return &roomsv1.PublishRequest{Namespace: "/", Room: "r", Payload: payload}
}

// TestPublisherMatchesAnswersToCallers publishes from many goroutines at once
// to a service that answers out of order: each caller gets its own answer,
// errors included, all on one stream.
func TestPublisherMatchesAnswersToCallers(t *testing.T) {
	const n = 200
	s := &streamServer{serve: func(reqs <-chan *roomsv1.PublishStreamRequest, send func(*roomsv1.PublishStreamResponse)) error {
		var batch []*roomsv1.PublishStreamRequest
		for req := range reqs {
			batch = append(batch, req)
			if len(batch) == 10 {
				for i := len(batch) - 1; i >= 0; i-- {
					send(answer(batch[i]))
				}
				batch = batch[:0]
			}
		}
		return nil
	}}
	p := start(t, s)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			payload := strconv.Itoa(i)
			if i%7 == 0 {
				payload = "bad" + payload
			}
			resp, err := p.Publish(t.Context(), publish(payload))
			switch {
			case i%7 == 0 && (status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != "payload "+payload):
				errs <- fmt.Errorf("publish %d: %v, want its own InvalidArgument", i, err)
			case i%7 != 0 && (err != nil || resp.GetOffset() != uint64(i)):
				errs <- fmt.Errorf("publish %d: offset %d, %v", i, resp.GetOffset(), err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := s.opened(); got != 1 {
		t.Errorf("%d streams opened, want 1", got)
	}
}

// TestPublisherReopensAfterTheStreamEnds ends the stream with publishes left
// unanswered: they fail with the stream's status, and the next publish goes
// out on a new stream.
func TestPublisherReopensAfterTheStreamEnds(t *testing.T) {
	first := make(chan struct{})
	var once sync.Once
	s := &streamServer{}
	s.serve = func(reqs <-chan *roomsv1.PublishStreamRequest, send func(*roomsv1.PublishStreamResponse)) error {
		if s.opened() == 1 {
			// The first stream reads two publishes, answers neither, and
			// ends as a service shutting down does.
			<-reqs
			<-reqs
			once.Do(func() { close(first) })
			return status.Error(codes.Unavailable, "shutting down")
		}
		for req := range reqs {
			send(answer(req))
		}
		return nil
	}
	p := start(t, s)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			if _, err := p.Publish(t.Context(), publish(strconv.Itoa(i))); status.Code(err) != codes.Unavailable {
				t.Errorf("publish on the ended stream: %v, want Unavailable", err)
			}
		})
	}
	wg.Wait()
	<-first
	resp, err := p.Publish(t.Context(), publish("5"))
	if err != nil || resp.GetOffset() != 5 {
		t.Fatalf("publish after the stream ended: %v, %v", resp, err)
	}
	if got := s.opened(); got != 2 {
		t.Errorf("%d streams opened, want 2", got)
	}
}

// TestPublisherGivesUpWithTheCaller checks that a caller whose context ends
// stops waiting, and that its late answer troubles nobody.
func TestPublisherGivesUpWithTheCaller(t *testing.T) {
	release := make(chan struct{})
	s := &streamServer{serve: func(reqs <-chan *roomsv1.PublishStreamRequest, send func(*roomsv1.PublishStreamResponse)) error {
		held := <-reqs
		<-release
		send(answer(held))
		for req := range reqs {
			send(answer(req))
		}
		return nil
	}}
	p := start(t, s)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.Publish(ctx, publish("1")); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("publish past its deadline: %v, want DeadlineExceeded", err)
	}
	close(release)
	if resp, err := p.Publish(t.Context(), publish("2")); err != nil || resp.GetOffset() != 2 {
		t.Fatalf("next publish: %v, %v", resp, err)
	}
}

// TestPublisherWithoutAService checks that publishing with no rooms service
// to reach fails at once, as a unary call would, and that Close ends a
// stream's waiting publishes.
func TestPublisherWithoutAService(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := roomsclient.NewPublisher(roomsv1.NewRoomsServiceClient(conn))
	defer p.Close()
	if _, err := p.Publish(t.Context(), publish("1")); status.Code(err) != codes.Unavailable {
		t.Fatalf("publish with no service: %v, want Unavailable", err)
	}

	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	q := start(t, &streamServer{serve: func(reqs <-chan *roomsv1.PublishStreamRequest, _ func(*roomsv1.PublishStreamResponse)) error {
		<-reqs
		<-hold
		return nil
	}})
	done := make(chan error, 1)
	go func() {
		_, err := q.Publish(t.Context(), publish("1"))
		done <- err
	}()
	// Close may come before the publish is sent or after: either way it
	// must not be left waiting.
	q.Close()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("publish when the publisher closed: %v, want Canceled", err)
	}
}
