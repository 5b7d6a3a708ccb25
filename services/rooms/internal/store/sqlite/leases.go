package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// Leases are rare writes (one per gateway every few seconds) and their
// expiry a periodic sweep, so their statements are not prepared.
const (
	qLeaseKept = `SELECT EXISTS (SELECT 1 FROM leases WHERE id = ?)`
	qKeepLease = `INSERT INTO leases (id, expire_time) VALUES (?, ?)
	ON CONFLICT (id) DO UPDATE SET expire_time = excluded.expire_time`
	qEndLapsedSessions = `DELETE FROM sessions WHERE lease != ''
	AND lease NOT IN (SELECT id FROM leases WHERE expire_time >= ?)`
	qForgetLeases    = `DELETE FROM leases WHERE expire_time < ?`
	qLonelyEphemeral = `SELECT m.room_id, r.namespace, r.name, m.user_id FROM members m JOIN rooms r ON r.id = m.room_id
	WHERE m.ephemeral = 1 AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.room_id = m.room_id AND s.user_id = m.user_id)`
)

// KeepLease implements store.Store.
func (s *Store) KeepLease(ctx context.Context, lease string, expire time.Time) (bool, error) {
	var kept bool
	err := s.write(ctx, func(ctx context.Context, tx *writeTx) error {
		if err := tx.QueryRowContext(ctx, qLeaseKept, lease).Scan(&kept); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, qKeepLease, lease, nanos(expire))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("keep lease %q: %w", lease, err)
	}
	return !kept, nil
}

// ExpireLeases implements store.Store.
func (s *Store) ExpireLeases(ctx context.Context, now time.Time) ([]store.Membership, error) {
	var left []store.Membership
	err := s.write(ctx, func(ctx context.Context, tx *writeTx) error {
		left = left[:0]
		if _, err := tx.ExecContext(ctx, qEndLapsedSessions, nanos(now)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, qForgetLeases, nanos(now)); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, qLonelyEphemeral)
		if err != nil {
			return err
		}
		var ids []int64
		err = eachRow(rows, func(rows *sql.Rows) error {
			var (
				id int64
				m  store.Membership
			)
			if err := rows.Scan(&id, &m.Room.Namespace, &m.Room.Name, &m.UserID); err != nil {
				return err
			}
			ids = append(ids, id)
			left = append(left, m)
			return nil
		})
		if err != nil {
			return err
		}
		for i, m := range left {
			if _, err := tx.StmtContext(ctx, s.st.deleteMember).ExecContext(ctx, ids[i], m.UserID); err != nil {
				return err
			}
			if _, err := tx.StmtContext(ctx, s.st.addMembers).ExecContext(ctx, -1, ids[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("expire leases: %w", err)
	}
	return left, nil
}
