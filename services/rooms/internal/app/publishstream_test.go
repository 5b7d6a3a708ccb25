package app_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/rooms/internal/app"
	"github.com/parleyhq/parley/services/rooms/internal/server"
)

// TestPublishStream sends publishes that succeed and publishes that each
// interceptor or check of a unary Publish would refuse, on one stream: every
// request gets the answer Publish would give, under its own id, and the
// refused ones do not end the stream.
func TestPublishStream(t *testing.T) {
	s := startServer(t, func(l *server.Limits, _ *app.GRPCOptions) { l.MaxPayloadBytes = 64 })
	mustCreate(t, s, "/", "r", nil)
	mustJoin(t, s, "/", "r", "alice", "s1")
	stream, err := s.rooms.PublishStream(svcCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	publish := func(sender, payload, clientID string) *roomsv1.PublishRequest {
		return &roomsv1.PublishRequest{Namespace: "/", Room: "r", Sender: sender, Payload: payload, ClientMessageId: clientID}
	}
	tests := []struct {
		req    *roomsv1.PublishRequest
		code   codes.Code
		offset uint64
		dup    bool
	}{
		{req: publish("alice", `"one"`, "c1"), offset: 1},
		{req: &roomsv1.PublishRequest{Namespace: "/", Room: "", Sender: "alice", Payload: `"x"`}, code: codes.InvalidArgument},
		{req: publish("bob", `"x"`, ""), code: codes.PermissionDenied},
		{req: publish("alice", `"`+strings.Repeat("x", 64)+`"`, ""), code: codes.ResourceExhausted},
		{req: nil, code: codes.InvalidArgument},
		{req: &roomsv1.PublishRequest{Namespace: "/", Room: "gone", Payload: `"x"`}, code: codes.NotFound},
	}
	for i, tt := range tests {
		if err := stream.Send(&roomsv1.PublishStreamRequest{Id: uint64(100 + i), Publish: tt.req}); err != nil {
			t.Fatal(err)
		}
	}
	got := map[uint64]*roomsv1.PublishStreamResponse{}
	for range tests {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("stream ended early: %v", err)
		}
		got[resp.GetId()] = resp
	}
	for i, tt := range tests {
		resp := got[uint64(100+i)]
		switch {
		case resp == nil:
			t.Errorf("request %d: no answer", i)
		case codes.Code(resp.GetCode()) != tt.code:
			t.Errorf("request %d: code %v (%s), want %v", i, codes.Code(resp.GetCode()), resp.GetMessage(), tt.code)
		case tt.code == codes.OK && (resp.GetPublished().GetOffset() != tt.offset || resp.GetPublished().GetDuplicate() != tt.dup):
			t.Errorf("request %d: published %v, want offset %d", i, resp.GetPublished(), tt.offset)
		case tt.code != codes.OK && (resp.GetMessage() == "" || resp.GetPublished() != nil):
			t.Errorf("request %d: refused with message %q and %v published", i, resp.GetMessage(), resp.GetPublished())
		}
	}

	// The stream goes on after its refusals, and a retry is a duplicate.
	for i, req := range []*roomsv1.PublishRequest{publish("alice", `"two"`, "c2"), publish("alice", `"one"`, "c1")} {
		if err := stream.Send(&roomsv1.PublishStreamRequest{Id: uint64(i), Publish: req}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"id:0 offset:2 dup:false", "id:1 offset:1 dup:true"}[i]
		if g := fmt.Sprintf("id:%d offset:%d dup:%v", resp.GetId(), resp.GetPublished().GetOffset(), resp.GetPublished().GetDuplicate()); g != want || resp.GetCode() != 0 {
			t.Errorf("after the refusals: %s (code %d), want %s", g, resp.GetCode(), want)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("stream ended with %v, want a clean end", err)
	}
	hist, err := s.rooms.GetHistory(svcCtx(t), &roomsv1.GetHistoryRequest{Namespace: "/", Room: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(hist.GetMessages()); n != 2 {
		t.Errorf("history holds %d messages, want 2", n)
	}
}

// TestPublishStreamAuthAndRateLimit checks that a publish stream needs the
// credential, and that each publish on it is counted against the rate limit
// as a call would be.
func TestPublishStreamAuthAndRateLimit(t *testing.T) {
	s := startServer(t, func(_ *server.Limits, o *app.GRPCOptions) { o.RateLimit, o.RateBurst = 0.001, 3 })
	if stream, err := s.rooms.PublishStream(t.Context()); err == nil {
		if _, err = stream.Recv(); status.Code(err) != codes.Unauthenticated {
			t.Errorf("stream without a credential: %v, want Unauthenticated", err)
		}
	}
	stream, err := s.rooms.PublishStream(svcCtx(t)) // the stream itself takes a token
	if err != nil {
		t.Fatal(err)
	}
	var seen []codes.Code
	for i := range 4 {
		req := &roomsv1.PublishStreamRequest{Id: uint64(i), Publish: &roomsv1.PublishRequest{Namespace: "/", Room: "none", Payload: `"x"`}}
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, codes.Code(resp.GetCode()))
	}
	want := []codes.Code{codes.NotFound, codes.NotFound, codes.ResourceExhausted, codes.ResourceExhausted}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("codes %v, want %v", seen, want)
	}
}
