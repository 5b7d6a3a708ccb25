package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// Join implements store.Store.
func (s *Store) Join(ctx context.Context, p store.JoinParams) (store.JoinResult, error) {
	var res store.JoinResult
	err := s.write(ctx, func(ctx context.Context, tx *writeTx) error {
		id, room, err := scanRoom(tx.StmtContext(ctx, s.st.roomW).QueryRowContext(ctx, p.Room.Namespace, p.Room.Name))
		if err != nil {
			return err
		}
		var joined int64
		err = tx.StmtContext(ctx, s.st.member).QueryRowContext(ctx, id, p.UserID).Scan(&joined)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if room.Options.Private && !p.Admit {
				return store.ErrPrivate
			}
			if room.Options.MaxMembers > 0 && room.MemberCount >= room.Options.MaxMembers {
				return store.ErrRoomFull
			}
			joined = nanos(p.Now)
			if _, err := tx.StmtContext(ctx, s.st.insertMember).ExecContext(ctx, id, p.UserID, joined, p.Ephemeral); err != nil {
				return err
			}
			if _, err := tx.StmtContext(ctx, s.st.addMembers).ExecContext(ctx, 1, id); err != nil {
				return err
			}
			room.MemberCount++
			res.Joined = true
		case err != nil:
			return err
		}
		if p.SessionID != "" {
			if _, err := tx.StmtContext(ctx, s.st.insertSession).ExecContext(ctx, id, p.UserID, p.SessionID, p.Lease); err != nil {
				return err
			}
		}
		res.Room = room
		res.Member, err = s.member(ctx, tx, id, p.UserID, joined)
		return err
	})
	if err != nil {
		return store.JoinResult{}, fmt.Errorf("join %s/%s as %q: %w", p.Room.Namespace, p.Room.Name, p.UserID, err)
	}
	return res, nil
}

// member returns userID's membership, begun at joined, with its live sessions
// counted.
func (s *Store) member(ctx context.Context, tx *writeTx, roomID int64, userID string, joined int64) (store.Member, error) {
	m := store.Member{UserID: userID, JoinTime: fromNanos(joined)}
	err := tx.StmtContext(ctx, s.st.countSessions).QueryRowContext(ctx, roomID, userID).Scan(&m.Sessions)
	return m, err
}

// RemoveMember implements store.Store.
func (s *Store) RemoveMember(ctx context.Context, key store.RoomKey, userID string) (bool, error) {
	var removed bool
	err := s.write(ctx, func(ctx context.Context, tx *writeTx) error {
		id, _, err := scanRoom(tx.StmtContext(ctx, s.st.roomW).QueryRowContext(ctx, key.Namespace, key.Name))
		if err != nil {
			return err
		}
		res, err := tx.StmtContext(ctx, s.st.deleteMember).ExecContext(ctx, id, userID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		removed = true
		_, err = tx.StmtContext(ctx, s.st.addMembers).ExecContext(ctx, -1, id)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("remove member %q from %s/%s: %w", userID, key.Namespace, key.Name, err)
	}
	return removed, nil
}

// EndSession implements store.Store.
func (s *Store) EndSession(ctx context.Context, key store.RoomKey, userID, sessionID string) (store.Member, error) {
	var m store.Member
	err := s.write(ctx, func(ctx context.Context, tx *writeTx) error {
		id, _, err := scanRoom(tx.StmtContext(ctx, s.st.roomW).QueryRowContext(ctx, key.Namespace, key.Name))
		if err != nil {
			return err
		}
		var joined int64
		err = tx.StmtContext(ctx, s.st.member).QueryRowContext(ctx, id, userID).Scan(&joined)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.StmtContext(ctx, s.st.deleteSession).ExecContext(ctx, id, userID, sessionID); err != nil {
			return err
		}
		m, err = s.member(ctx, tx, id, userID, joined)
		return err
	})
	if err != nil {
		return store.Member{}, fmt.Errorf("end session %q of %q in %s/%s: %w", sessionID, userID, key.Namespace, key.Name, err)
	}
	return m, nil
}

// ListMembers implements store.Store.
func (s *Store) ListMembers(ctx context.Context, key store.RoomKey, afterUser string, limit int) ([]store.Member, error) {
	var members []store.Member
	err := s.read(ctx, func(tx *sql.Tx) error {
		id, _, err := scanRoom(tx.StmtContext(ctx, s.st.roomR).QueryRowContext(ctx, key.Namespace, key.Name))
		if err != nil || limit <= 0 {
			return err
		}
		rows, err := tx.StmtContext(ctx, s.st.listMembers).QueryContext(ctx, id, afterUser, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				m      store.Member
				joined int64
			)
			if err := rows.Scan(&m.UserID, &joined, &m.Sessions); err != nil {
				return err
			}
			m.JoinTime = fromNanos(joined)
			members = append(members, m)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list members of %s/%s: %w", key.Namespace, key.Name, err)
	}
	return members, nil
}
