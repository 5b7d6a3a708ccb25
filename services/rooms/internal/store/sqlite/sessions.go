package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// SaveSession implements store.Store.
func (s *Store) SaveSession(ctx context.Context, namespace, id string, data []byte, expire time.Time) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.StmtContext(ctx, s.st.saveSession).ExecContext(ctx, namespace, id, data, nanos(expire))
		return err
	})
	if err != nil {
		return fmt.Errorf("save session %s in %s: %w", id, namespace, err)
	}
	return nil
}

// TakeSession implements store.Store.
func (s *Store) TakeSession(ctx context.Context, namespace, id string, now time.Time) ([]byte, error) {
	var (
		data   []byte
		expire int64
	)
	err := s.write(ctx, func(tx *sql.Tx) error {
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
