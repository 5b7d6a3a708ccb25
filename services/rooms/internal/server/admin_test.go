package server

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// countingStore counts the periodic jobs' calls; nothing else is called.
type countingStore struct {
	store.Store
	sweeps, leases atomic.Int64
}

func (s *countingStore) Sweep(context.Context, time.Time, time.Time) error {
	s.sweeps.Add(1)
	return nil
}

func (s *countingStore) DeleteEmptyRooms(context.Context, time.Time) ([]store.RoomKey, error) {
	return nil, nil
}

func (s *countingStore) ExpireLeases(context.Context, time.Time) ([]store.Membership, error) {
	s.leases.Add(1)
	return nil, nil
}

// TestPeriodicJobsTakeTurns checks that the periodic jobs run only on the
// ticks this replica claims.
func TestPeriodicJobsTakeTurns(t *testing.T) {
	for _, tt := range []struct {
		name  string
		claim func(context.Context, string, time.Duration) bool
		runs  bool
	}{
		{"alone", nil, true},
		{"claimed here", func(context.Context, string, time.Duration) bool { return true }, true},
		{"claimed elsewhere", func(context.Context, string, time.Duration) bool { return false }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := &countingStore{}
			var asked atomic.Int64
			d := &Deps{Store: st, Log: slog.New(slog.DiscardHandler)}
			if tt.claim != nil {
				d.Claim = func(ctx context.Context, job string, every time.Duration) bool {
					asked.Add(1)
					return tt.claim(ctx, job, every)
				}
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{}, 2)
			go func() { Sweep(ctx, d, time.Millisecond); done <- struct{}{} }()
			go func() { ExpireLeases(ctx, d, time.Millisecond, 0); done <- struct{}{} }()
			deadline := time.Now().Add(10 * time.Second)
			for (tt.runs && (st.sweeps.Load() < 3 || st.leases.Load() < 3)) || (!tt.runs && asked.Load() < 6) {
				if time.Now().After(deadline) {
					t.Fatalf("%d sweeps, %d lease checks, %d claims asked", st.sweeps.Load(), st.leases.Load(), asked.Load())
				}
				time.Sleep(time.Millisecond)
			}
			cancel()
			<-done
			<-done
			if !tt.runs && st.sweeps.Load()+st.leases.Load() != 0 {
				t.Errorf("jobs claimed elsewhere ran: %d sweeps, %d lease checks", st.sweeps.Load(), st.leases.Load())
			}
		})
	}
}
