package server

import (
	"context"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// panickingStore panics on Publish, as a bug in a store would.
type panickingStore struct{ store.Store }

func (panickingStore) Publish(context.Context, store.PublishParams) (store.Message, bool, error) {
	panic("store bug")
}

// TestPublishOneRecoversAPanic checks that a panic while publishing a
// stream's request is answered as an internal error, as the recovery
// interceptor answers a call's, instead of ending the process: the request
// runs on a goroutine the interceptor never sees.
func TestPublishOneRecoversAPanic(t *testing.T) {
	s := NewRooms(&Deps{Store: panickingStore{}, Limits: DefaultLimits(), Log: slog.New(slog.DiscardHandler), Metrics: NewMetrics(prometheus.NewRegistry())})
	resp := s.publishOne(t.Context(), &roomsv1.PublishStreamRequest{Id: 7, Publish: &roomsv1.PublishRequest{Namespace: "/", Room: "r", Payload: `"x"`}})
	if resp.GetId() != 7 || codes.Code(resp.GetCode()) != codes.Internal || resp.GetPublished() != nil {
		t.Fatalf("answer %v, want id 7 with an internal error", resp)
	}
}
