package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// SaveSessions implements store.Store.
func (s *Store) SaveSessions(ctx context.Context, sessions []store.Session) error {
	err := s.write(ctx, func(ctx context.Context, tx *writeTx) error {
		stmt := tx.StmtContext(ctx, s.st.saveSession)
		for _, ss := range sessions {
			if _, err := stmt.ExecContext(ctx, ss.Namespace, ss.ID, ss.Data, nanos(ss.Expire)); err != nil {
				return fmt.Errorf("session %s in %s: %w", ss.ID, ss.Namespace, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save %d sessions: %w", len(sessions), err)
	}
	return nil
}

// TakeSession implements store.Store.
func (s *Store) TakeSession(ctx context.Context, namespace, id string, now time.Time) ([]byte, error) {
	var (
		data   []byte
		expire int64
	)
	err := s.write(ctx, func(ctx context.Context, tx *writeTx) error {
		return tx.StmtContext(ctx, s.st.takeSession).QueryRowContext(ctx, namespace, id).Scan(&data, &expire)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("take session %s in %s: %w", id, namespace, store.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("take session %s in %s: %w", id, namespace, err)
	case expire <= nanos(now):
		return nil, fmt.Errorf("take session %s in %s: expired: %w", id, namespace, store.ErrNotFound)
	}
	return data, nil
}
