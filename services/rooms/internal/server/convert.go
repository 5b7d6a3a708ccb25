package server

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// errStatus turns an error from the store into the status the caller sees.
// Unexpected errors are logged here, once, and reach the caller without detail.
func errStatus(ctx context.Context, log *slog.Logger, op string, err error) error {
	for _, m := range []struct {
		target error
		code   codes.Code
	}{
		{store.ErrNotFound, codes.NotFound},
		{store.ErrAlreadyExists, codes.AlreadyExists},
		{store.ErrRoomFull, codes.ResourceExhausted},
		{store.ErrPrivate, codes.PermissionDenied},
		{store.ErrNotMember, codes.PermissionDenied},
		{store.ErrReadOnly, codes.PermissionDenied},
		{context.Canceled, codes.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
	} {
		// The sentinel's own text is enough: the caller knows which room it
		// asked about, and the wrapped detail is for logs.
		if errors.Is(err, m.target) {
			return status.Errorf(m.code, "%s: %v", op, m.target)
		}
	}
	if errors.Is(err, store.ErrUnavailable) {
		log.WarnContext(ctx, "store unavailable", "op", op, "err", err)
		return status.Errorf(codes.Unavailable, "%s: %v; retry", op, store.ErrUnavailable)
	}
	log.ErrorContext(ctx, "store failure", "op", op, "err", err)
	return status.Errorf(codes.Internal, "%s failed", op)
}

func roomKey(namespace, room string) store.RoomKey {
	return store.RoomKey{Namespace: namespace, Name: room}
}

func toProtoRoom(r store.Room) *roomsv1.Room {
	vis := roomsv1.Visibility_VISIBILITY_PUBLIC
	if r.Options.Private {
		vis = roomsv1.Visibility_VISIBILITY_PRIVATE
	}
	opts := &roomsv1.RoomOptions{
		Visibility:         vis,
		MaxMembers:         r.Options.MaxMembers,
		ReadOnly:           r.Options.ReadOnly,
		HistoryMaxMessages: r.Options.HistoryMaxMessages,
	}
	if r.Options.HistoryRetention > 0 {
		opts.HistoryRetention = durationpb.New(r.Options.HistoryRetention)
	}
	if r.Options.DeleteWhenEmpty > 0 {
		opts.DeleteWhenEmpty = durationpb.New(r.Options.DeleteWhenEmpty)
	}
	return &roomsv1.Room{
		Namespace:   r.Namespace,
		Name:        r.Name,
		Epoch:       r.Epoch,
		Options:     opts,
		LastOffset:  r.LastOffset,
		MemberCount: r.MemberCount,
		CreateTime:  timestamppb.New(r.CreateTime),
		UpdateTime:  timestamppb.New(r.UpdateTime),
	}
}

func toProtoMember(m store.Member) *roomsv1.Member {
	return &roomsv1.Member{
		UserId:       m.UserID,
		JoinTime:     timestamppb.New(m.JoinTime),
		Online:       m.Sessions > 0,
		SessionCount: m.Sessions,
	}
}

func toProtoMessage(m store.Message) *roomsv1.Message {
	return &roomsv1.Message{
		Namespace:       m.Room.Namespace,
		Room:            m.Room.Name,
		Offset:          m.Offset,
		Sender:          m.Sender,
		Payload:         m.Payload,
		ClientMessageId: m.ClientMessageID,
		SessionId:       m.SessionID,
		CreateTime:      timestamppb.New(m.CreateTime),
	}
}

func messageEvent(m *roomsv1.Message) *roomsv1.Event {
	return &roomsv1.Event{Namespace: m.GetNamespace(), Room: m.GetRoom(), Kind: &roomsv1.Event_Message{Message: m}}
}

// retention reads an optional duration; validation has already bounded it.
func retention(d *durationpb.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.AsDuration()
}

// Page tokens are opaque to callers; they carry the last key of the previous
// page so listing stays correct while rooms or members come and go.
func encodeToken(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, "\x00")))
}

func decodeToken(tok string, n int) ([]string, error) {
	if tok == "" {
		return make([]string, n), nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "malformed page_token")
	}
	parts := strings.Split(string(b), "\x00")
	if len(parts) != n {
		return nil, status.Errorf(codes.InvalidArgument, "malformed page_token (%d parts)", len(parts))
	}
	return parts, nil
}

// pageSize applies the default and the cap to a requested page size.
func pageSize(requested uint32, def, limit int) int {
	n := int(requested)
	if n == 0 {
		n = def
	}
	return min(n, limit)
}
