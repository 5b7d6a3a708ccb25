package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// Publish implements store.Store. Publishes are committed in groups: a
// single goroutine (commitPublishes) takes every publish waiting at that
// moment and runs them in one immediate transaction, in which a refused
// publish writes nothing (see commitGroup). Offsets stay gapless because no
// other write can run between reading a room's last offset and storing the
// next one, and a publish returns only once its group is committed, so an
// acknowledged message survives a crash. The same goroutine hands each
// committed group to Options.Committed before answering its callers: a group
// is committed in offset order, and so it is announced.
func (s *Store) Publish(ctx context.Context, p store.PublishParams) (store.Message, bool, error) {
	req := &publishReq{ctx: ctx, p: p, done: make(chan publishRes, 1)}
	select {
	case s.publishes <- req:
	case <-ctx.Done():
		return store.Message{}, false, fmt.Errorf("publish %s/%s: %w", p.Room.Namespace, p.Room.Name, ctx.Err())
	case <-s.closing:
		return store.Message{}, false, fmt.Errorf("publish %s/%s: %w", p.Room.Namespace, p.Room.Name, errClosed)
	}
	// Once queued, the publish may be committed whatever happens to ctx:
	// wait for the outcome rather than report a failure that did not happen.
	r := <-req.done
	if r.err != nil {
		return store.Message{}, false, fmt.Errorf("publish %s/%s: %w", p.Room.Namespace, p.Room.Name, r.err)
	}
	return r.msg, r.duplicate, nil
}

// maxGroup bounds how many publishes, or other writes, one transaction
// commits.
const maxGroup = 128

var errClosed = errors.New("store closed")

type publishReq struct {
	ctx  context.Context
	p    store.PublishParams
	done chan publishRes
}

type publishRes struct {
	msg       store.Message
	duplicate bool
	err       error
}

// commitPublishes runs until the store closes, committing queued publishes in
// groups.
func (s *Store) commitPublishes() {
	group := make([]*publishReq, 0, maxGroup)
	results := make([]publishRes, 0, maxGroup)
	stored := make([]store.Message, 0, maxGroup)
	for {
		var ok bool
		group, ok = nextGroup(s.publishes, s.closing, group, func(req *publishReq) { req.done <- publishRes{err: errClosed} })
		if !ok {
			return
		}
		results = s.commitGroup(group, results[:0])
		if s.committed != nil {
			stored = stored[:0]
			for _, r := range results {
				if r.err == nil && !r.duplicate {
					stored = append(stored, r.msg)
				}
			}
			if len(stored) > 0 {
				s.committed(stored)
			}
		}
		for i, req := range group {
			req.done <- results[i]
		}
	}
}

// commitGroup publishes each request in one transaction and returns their
// outcomes, all failed if the transaction cannot commit. A publish is refused
// only by its checks, which write nothing, so a refusal needs no savepoint to
// undo it; a write that fails leaves its publish half stored and fails the
// whole group. A room's last offset is written, and its history trimmed,
// once per group rather than once per publish: the group commits as a whole.
func (s *Store) commitGroup(group []*publishReq, results []publishRes) []publishRes {
	// Statements run under the committer's own context: one caller giving up
	// must not abort the transaction the others share.
	ctx := context.Background()
	tails := make(map[int64]roomTail, 1)
	err := s.transact(ctx, func(tx *writeTx) error {
		for _, req := range group {
			if err := req.ctx.Err(); err != nil {
				results = append(results, publishRes{err: err})
				continue
			}
			pd, dup, err := s.checkPublish(ctx, tx, req.p)
			if err != nil || dup {
				results = append(results, publishRes{msg: pd.msg, duplicate: dup, err: err})
				continue
			}
			// The room's row does not have the group's earlier publishes yet.
			if t, ok := tails[pd.roomID]; ok {
				pd.msg.Offset = t.lastOffset + 1
			}
			if err := s.storePublish(ctx, tx, pd); err != nil {
				return err
			}
			tails[pd.roomID] = roomTail{lastOffset: pd.msg.Offset, historyMax: pd.historyMax}
			results = append(results, publishRes{msg: pd.msg})
		}
		for id, t := range tails {
			if err := s.storeTail(ctx, tx, id, t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		results = results[:0]
		for range group {
			results = append(results, publishRes{err: err})
		}
	}
	return results
}

// pending is a publish that passed its checks, with its offset and time.
type pending struct {
	roomID     int64
	historyMax uint32
	created    int64 // msg.CreateTime as stored
	msg        store.Message
}

// checkPublish reads what p needs inside the group's transaction, in one
// statement and without writing: it refuses p with an error, reports a
// duplicate (with the first message), or returns the message to store.
func (s *Store) checkPublish(ctx context.Context, tx *writeTx, p store.PublishParams) (pending, bool, error) {
	pd := pending{msg: store.Message{
		Room:            p.Room,
		Sender:          p.Sender,
		Payload:         p.Payload,
		ClientMessageID: p.ClientMessageID,
		SessionID:       p.SessionID,
	}}
	var (
		readOnly, member      bool
		lastOffset            uint64
		dupOffset, dupCreated sql.NullInt64
	)
	err := tx.StmtContext(ctx, s.st.publishCheck).QueryRowContext(ctx, p.Room.Namespace, p.Room.Name, p.Sender, p.ClientMessageID).
		Scan(&pd.roomID, &readOnly, &pd.historyMax, &lastOffset, &member, &dupOffset, &dupCreated)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return pd, false, store.ErrNotFound
	case err != nil:
		return pd, false, err
	case p.Sender != "" && readOnly:
		return pd, false, store.ErrReadOnly
	case !member:
		return pd, false, store.ErrNotMember
	case dupOffset.Valid && dupCreated.Int64 >= nanos(p.DedupeSince):
		return pd, true, s.firstMessage(ctx, tx, pd.roomID, uint64(dupOffset.Int64), dupCreated.Int64, &pd.msg)
	}
	pd.msg.Offset = lastOffset + 1
	pd.created = nanos(p.Now)
	pd.msg.CreateTime = fromNanos(pd.created)
	return pd, false, nil
}

// storePublish stores a checked publish with its deduplication key.
func (s *Store) storePublish(ctx context.Context, tx *writeTx, pd pending) error {
	m, created := pd.msg, pd.created
	if _, err := tx.StmtContext(ctx, s.st.insertMessage).ExecContext(ctx, pd.roomID, m.Offset,
		m.Sender, m.SessionID, m.ClientMessageID, m.Payload, created); err != nil {
		return err
	}
	if m.ClientMessageID != "" {
		if _, err := tx.StmtContext(ctx, s.st.upsertDedupe).ExecContext(ctx, pd.roomID, m.Sender, m.ClientMessageID, m.Offset, created); err != nil {
			return err
		}
	}
	return nil
}

// roomTail is what a group's publishes to one room leave to write: the
// room's new last offset, and its history limit to trim to.
type roomTail struct {
	lastOffset uint64
	historyMax uint32
}

// storeTail sets a room's last offset and trims its history.
func (s *Store) storeTail(ctx context.Context, tx *writeTx, roomID int64, t roomTail) error {
	if _, err := tx.StmtContext(ctx, s.st.setLastOffset).ExecContext(ctx, t.lastOffset, roomID); err != nil {
		return err
	}
	if limit := uint64(t.historyMax); limit > 0 && t.lastOffset > limit {
		if _, err := tx.StmtContext(ctx, s.st.trim).ExecContext(ctx, roomID, t.lastOffset-limit); err != nil {
			return err
		}
	}
	return nil
}

// firstMessage sets msg, the publish a duplicate repeats, to the message
// stored at offset. Should that message be gone already (trimmed, purged or
// swept), msg keeps the fields of the publish, which a retry repeats, with
// the first publish's offset and time.
func (s *Store) firstMessage(ctx context.Context, tx *writeTx, roomID int64, offset uint64, created int64, msg *store.Message) error {
	msg.Offset = offset
	msg.CreateTime = fromNanos(created)
	first, err := scanMessage(tx.StmtContext(ctx, s.st.message).QueryRowContext(ctx, roomID, offset), msg.Room)
	switch {
	case err == nil:
		*msg = first
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	return nil
}

// History implements store.Store.
func (s *Store) History(ctx context.Context, q store.HistoryQuery) ([]store.Message, error) {
	var (
		stmt   *sql.Stmt
		offset int64
	)
	switch q.Mode {
	case store.HistoryLatest:
		stmt, offset = s.st.historyDesc, math.MaxInt64
	case store.HistoryBefore:
		stmt, offset = s.st.historyDesc, clampOffset(q.Offset)
	case store.HistoryAfter:
		stmt, offset = s.st.historyAsc, clampOffset(q.Offset)
	default:
		return nil, fmt.Errorf("history of %s/%s: unknown mode %d", q.Room.Namespace, q.Room.Name, q.Mode)
	}
	var msgs []store.Message
	err := s.read(ctx, func(tx *sql.Tx) error {
		id, _, err := scanRoom(tx.StmtContext(ctx, s.st.roomR).QueryRowContext(ctx, q.Room.Namespace, q.Room.Name))
		if err != nil || q.Limit <= 0 {
			return err
		}
		rows, err := tx.StmtContext(ctx, stmt).QueryContext(ctx, id, offset, q.Limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		msgs = make([]store.Message, 0, min(q.Limit, 256))
		for rows.Next() {
			m, err := scanMessage(rows, q.Room)
			if err != nil {
				return err
			}
			msgs = append(msgs, m)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("history of %s/%s: %w", q.Room.Namespace, q.Room.Name, err)
	}
	if stmt == s.st.historyDesc {
		slices.Reverse(msgs) // read newest first to apply the limit at the right end
	}
	return msgs, nil
}

// scanMessage reads a row of messageCols.
func scanMessage(row scanner, room store.RoomKey) (store.Message, error) {
	m := store.Message{Room: room}
	var created int64
	if err := row.Scan(&m.Offset, &m.Sender, &m.SessionID, &m.ClientMessageID, &m.Payload, &created); err != nil {
		return store.Message{}, err
	}
	m.CreateTime = fromNanos(created)
	return m, nil
}

// Purge implements store.Store.
func (s *Store) Purge(ctx context.Context, key store.RoomKey, before uint64) (uint64, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *writeTx) error {
		id, _, err := scanRoom(tx.StmtContext(ctx, s.st.roomW).QueryRowContext(ctx, key.Namespace, key.Name))
		if err != nil {
			return err
		}
		res, err := tx.StmtContext(ctx, s.st.purge).ExecContext(ctx, id, clampOffset(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purge %s/%s: %w", key.Namespace, key.Name, err)
	}
	return uint64(n), nil
}

// Sweep implements store.Store.
func (s *Store) Sweep(ctx context.Context, now, dedupeBefore time.Time) error {
	err := s.write(ctx, func(ctx context.Context, tx *writeTx) error {
		if _, err := tx.StmtContext(ctx, s.st.sweepMsgs).ExecContext(ctx, nanos(now)); err != nil {
			return err
		}
		if _, err := tx.StmtContext(ctx, s.st.sweepDedup).ExecContext(ctx, nanos(dedupeBefore)); err != nil {
			return err
		}
		_, err := tx.StmtContext(ctx, s.st.sweepSessions).ExecContext(ctx, nanos(now))
		return err
	})
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	return nil
}

// Stats implements store.Store.
func (s *Store) Stats(ctx context.Context, namespace string) (store.Stats, error) {
	var st store.Stats
	err := s.st.stats.QueryRowContext(ctx, namespace).Scan(&st.Rooms, &st.Members, &st.Sessions, &st.Messages)
	if err != nil {
		return store.Stats{}, fmt.Errorf("stats %q: %w", namespace, err)
	}
	return st, nil
}
