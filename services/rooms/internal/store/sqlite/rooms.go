package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// CreateRoom implements store.Store.
func (s *Store) CreateRoom(ctx context.Context, key store.RoomKey, opts store.RoomOptions, now time.Time) (store.Room, error) {
	epoch := newEpoch()
	err := s.transact(ctx, func(tx *writeTx) error {
		res, err := tx.StmtContext(ctx, s.st.insertRoom).ExecContext(ctx, key.Namespace, key.Name,
			opts.Private, opts.MaxMembers, opts.ReadOnly, opts.HistoryMaxMessages,
			int64(opts.HistoryRetention), nanos(now), nanos(now), epoch, int64(opts.DeleteWhenEmpty))
		if err != nil {
			return err
		}
		return rowsAffected(res, store.ErrAlreadyExists)
	})
	if err != nil {
		return store.Room{}, fmt.Errorf("create room %s/%s: %w", key.Namespace, key.Name, err)
	}
	return store.Room{
		RoomKey:    key,
		Options:    opts,
		CreateTime: fromNanos(nanos(now)),
		UpdateTime: fromNanos(nanos(now)),
		Epoch:      epoch,
	}, nil
}

// newEpoch returns a random epoch; 64 bits make two incarnations of one room
// sharing it unthinkable.
func newEpoch() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// GetRoom implements store.Store.
func (s *Store) GetRoom(ctx context.Context, key store.RoomKey) (store.Room, error) {
	_, room, err := scanRoom(s.st.roomR.QueryRowContext(ctx, key.Namespace, key.Name))
	if err != nil {
		return store.Room{}, fmt.Errorf("get room %s/%s: %w", key.Namespace, key.Name, err)
	}
	return room, nil
}

// ListRooms implements store.Store.
func (s *Store) ListRooms(ctx context.Context, q store.ListRoomsQuery) ([]store.Room, error) {
	if q.Limit <= 0 {
		return nil, nil
	}
	var upper any
	if u, ok := prefixEnd(q.Prefix); ok {
		upper = u
	}
	rows, err := s.st.listRooms.QueryContext(ctx, q.After.Namespace, q.After.Name,
		q.Namespace, q.Prefix, upper, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("list rooms: %w", err)
	}
	defer rows.Close()
	var rooms []store.Room
	for rows.Next() {
		_, room, err := scanRoom(rows)
		if err != nil {
			return nil, fmt.Errorf("list rooms: %w", err)
		}
		rooms = append(rooms, room)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list rooms: %w", err)
	}
	return rooms, nil
}

// prefixEnd returns the smallest string above every string with the given
// prefix, and false when there is none (an empty prefix, or one of 0xff
// bytes only). SQLite compares text bytewise, like Go.
func prefixEnd(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// UpdateRoom implements store.Store.
func (s *Store) UpdateRoom(ctx context.Context, key store.RoomKey, patch store.RoomOptionsPatch, now time.Time) (store.Room, error) {
	var retention, emptyTTL any
	if patch.HistoryRetention != nil {
		retention = int64(*patch.HistoryRetention)
	}
	if patch.DeleteWhenEmpty != nil {
		emptyTTL = int64(*patch.DeleteWhenEmpty)
	}
	var room store.Room
	err := s.transact(ctx, func(tx *writeTx) error {
		var err error
		_, room, err = scanRoom(tx.StmtContext(ctx, s.st.updateRoom).QueryRowContext(ctx, key.Namespace, key.Name,
			nullable(patch.Private), nullable(patch.MaxMembers), nullable(patch.ReadOnly),
			nullable(patch.HistoryMaxMessages), retention, nanos(now), emptyTTL))
		return err
	})
	if err != nil {
		return store.Room{}, fmt.Errorf("update room %s/%s: %w", key.Namespace, key.Name, err)
	}
	return room, nil
}

// nullable returns *p, or nil (SQL NULL) for a nil p.
func nullable[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// DeleteRoom implements store.Store. Foreign keys remove the room's members,
// sessions, messages and deduplication keys with it.
func (s *Store) DeleteRoom(ctx context.Context, key store.RoomKey) error {
	err := s.transact(ctx, func(tx *writeTx) error {
		res, err := tx.StmtContext(ctx, s.st.deleteRoom).ExecContext(ctx, key.Namespace, key.Name)
		if err != nil {
			return err
		}
		return rowsAffected(res, store.ErrNotFound)
	})
	if err != nil {
		return fmt.Errorf("delete room %s/%s: %w", key.Namespace, key.Name, err)
	}
	return nil
}

// rowsAffected returns none if the statement changed no row.
func rowsAffected(res sql.Result, none error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return none
	}
	return nil
}

type scanner interface {
	Scan(dest ...any) error
}

// scanRoom reads a row of roomCols. A missing row is store.ErrNotFound.
func scanRoom(row scanner) (int64, store.Room, error) {
	var (
		id               int64
		r                store.Room
		retention        int64
		created, updated int64
		emptyTTL         int64
	)
	err := row.Scan(&id, &r.Namespace, &r.Name, &r.Options.Private, &r.Options.MaxMembers,
		&r.Options.ReadOnly, &r.Options.HistoryMaxMessages, &retention, &r.LastOffset,
		&r.MemberCount, &created, &updated, &r.Epoch, &emptyTTL)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, store.Room{}, store.ErrNotFound
	}
	if err != nil {
		return 0, store.Room{}, err
	}
	r.Options.HistoryRetention = time.Duration(retention)
	r.Options.DeleteWhenEmpty = time.Duration(emptyTTL)
	r.CreateTime = fromNanos(created)
	r.UpdateTime = fromNanos(updated)
	return id, r, nil
}

// Rooms left empty are found by the sweep, rarely, so these statements are
// not prepared.
const (
	qClearEmpty = `UPDATE rooms SET empty_since = 0 WHERE member_count > 0 AND empty_since != 0`
	qNoteEmpty  = `UPDATE rooms SET empty_since = ? WHERE member_count = 0 AND empty_ttl_ns > 0 AND empty_since = 0`
	qLongEmpty  = `DELETE FROM rooms WHERE member_count = 0 AND empty_ttl_ns > 0 AND empty_since != 0
	AND empty_since + empty_ttl_ns <= ? RETURNING namespace, name`
)

// DeleteEmptyRooms implements store.Store.
func (s *Store) DeleteEmptyRooms(ctx context.Context, now time.Time) ([]store.RoomKey, error) {
	var deleted []store.RoomKey
	err := s.write(ctx, func(ctx context.Context, tx *writeTx) error {
		deleted = deleted[:0]
		if _, err := tx.ExecContext(ctx, qClearEmpty); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, qLongEmpty, nanos(now))
		if err != nil {
			return err
		}
		err = eachRow(rows, func(rows *sql.Rows) error {
			var k store.RoomKey
			if err := rows.Scan(&k.Namespace, &k.Name); err != nil {
				return err
			}
			deleted = append(deleted, k)
			return nil
		})
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, qNoteEmpty, nanos(now))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete empty rooms: %w", err)
	}
	return deleted, nil
}
