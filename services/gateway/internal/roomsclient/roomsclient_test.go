package roomsclient_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/gateway/internal/roomsclient"
)

// bigHistory answers GetHistory with one message of size payload bytes.
type bigHistory struct {
	roomsv1.UnimplementedRoomsServiceServer
	size int
}

func (s *bigHistory) GetHistory(context.Context, *roomsv1.GetHistoryRequest) (*roomsv1.GetHistoryResponse, error) {
	return &roomsv1.GetHistoryResponse{Messages: []*roomsv1.Message{{Payload: strings.Repeat("x", s.size)}}}, nil
}

// TestDialReceivesMoreThanItsWindows checks that Dial's fixed flow-control
// windows (a megabyte per stream, four per connection) still let through an
// answer larger than a stream's window, and answers that together pass the
// connection's.
func TestDialReceivesMoreThanItsWindows(t *testing.T) {
	for _, tt := range []struct {
		name        string
		calls, size int // size: the payload bytes of each answer
	}{
		{"one answer of 3 MB", 1, 3 << 20},
		{"ten answers of 900 KB", 10, 900 << 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := grpc.NewServer()
			roomsv1.RegisterRoomsServiceServer(srv, &bigHistory{size: tt.size})
			go srv.Serve(lis)
			t.Cleanup(srv.Stop)
			conn, err := roomsclient.Dial(lis.Addr().String(), "token")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			client := roomsv1.NewRoomsServiceClient(conn)
			for i := range tt.calls {
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				resp, err := client.GetHistory(ctx, &roomsv1.GetHistoryRequest{Namespace: "/", Room: "r"})
				cancel()
				if err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				if got := len(resp.GetMessages()[0].GetPayload()); got != tt.size {
					t.Fatalf("call %d: payload of %d bytes, want %d", i, got, tt.size)
				}
			}
		})
	}
}
