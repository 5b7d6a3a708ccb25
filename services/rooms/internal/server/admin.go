package server

import (
	"context"
	"log/slog"
	"time"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/kit/loop"
)

// Admin implements roomsv1.AdminServiceServer.
type Admin struct {
	roomsv1.UnimplementedAdminServiceServer
	d *Deps
}

// NewAdmin returns the AdminService implementation.
func NewAdmin(d *Deps) *Admin { return &Admin{d: d} }

func (s *Admin) PurgeHistory(ctx context.Context, req *roomsv1.PurgeHistoryRequest) (*roomsv1.PurgeHistoryResponse, error) {
	n, err := s.d.Store.Purge(ctx, roomKey(req.GetNamespace(), req.GetRoom()), req.GetBeforeOffset())
	if err != nil {
		return nil, errStatus(ctx, s.d.Log, "purge history", err)
	}
	s.d.Log.InfoContext(ctx, "history purged", "namespace", req.GetNamespace(), "room", req.GetRoom(), "purged", n)
	return &roomsv1.PurgeHistoryResponse{Purged: n}, nil
}

func (s *Admin) GetStats(ctx context.Context, req *roomsv1.GetStatsRequest) (*roomsv1.GetStatsResponse, error) {
	st, err := s.d.Store.Stats(ctx, req.GetNamespace())
	if err != nil {
		return nil, errStatus(ctx, s.d.Log, "get stats", err)
	}
	return &roomsv1.GetStatsResponse{Rooms: st.Rooms, Members: st.Members, Sessions: st.Sessions, Messages: st.Messages}, nil
}

// Sweep runs the store's retention sweep, and deletes the rooms left empty
// long enough (which subscribers see deleted), every interval until ctx is
// done. Failures are logged and retried at the next tick: a missed sweep only
// keeps messages a little longer.
func Sweep(ctx context.Context, d *Deps, interval time.Duration) {
	loop.Every(ctx, interval, func(ctx context.Context) {
		if !d.claim(ctx, "sweep", interval) {
			return
		}
		now := d.now()
		if err := d.Store.Sweep(ctx, now, now.Add(-d.Limits.DedupeWindow)); err != nil && ctx.Err() == nil {
			d.Log.LogAttrs(ctx, slog.LevelError, "retention sweep failed", slog.Any("err", err))
		}
		deleted, err := d.Store.DeleteEmptyRooms(ctx, now)
		if err != nil && ctx.Err() == nil {
			d.Log.LogAttrs(ctx, slog.LevelError, "deleting empty rooms failed", slog.Any("err", err))
		}
		for _, k := range deleted {
			d.Log.LogAttrs(ctx, slog.LevelInfo, "empty room deleted", slog.String("namespace", k.Namespace), slog.String("room", k.Name))
			broadcastDeleted(d, k.Namespace, k.Name)
		}
	})
}

// ExpireLeases ends, every interval until ctx ends, the sessions whose lease
// was not kept; members whose ephemeral membership ends with them are seen
// leaving by subscribers, as if they had left. It starts after grace, so that
// gateways can keep their leases again after this service was down for longer
// than their TTL, instead of seeing their users' sessions ended.
func ExpireLeases(ctx context.Context, d *Deps, interval, grace time.Duration) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(grace):
	}
	loop.Every(ctx, interval, func(ctx context.Context) {
		if !d.claim(ctx, "leases", interval) {
			return
		}
		left, err := d.Store.ExpireLeases(ctx, d.now())
		if err != nil && ctx.Err() == nil {
			d.Log.LogAttrs(ctx, slog.LevelError, "lease expiry failed", slog.Any("err", err))
		}
		for _, m := range left {
			broadcastLeft(d, m.Room.Namespace, m.Room.Name, m.UserID, false)
		}
	})
}
