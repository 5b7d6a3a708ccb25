package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// statements are prepared once in Open. Those used by writes are prepared on
// the writer's held connection (Store.wc), where every write runs; those used
// by reads on the reader pool, since database/sql only lets a transaction use
// statements of its own *sql.DB.
type statements struct {
	all []*sql.Stmt

	// Writer.
	insertRoom, updateRoom, deleteRoom, roomW           *sql.Stmt
	member, insertMember, deleteMember, addMembers      *sql.Stmt
	insertSession, deleteSession, countSessions         *sql.Stmt
	publishCheck, message, insertMessage, setLastOffset *sql.Stmt
	upsertDedupe, trim, purge, sweepMsgs, sweepDedup    *sql.Stmt
	saveSession, takeSession, sweepSessions             *sql.Stmt
	savepoint, rollbackTo, release                      *sql.Stmt
	begin, commit, rollback                             *sql.Stmt

	// Readers.
	roomR, listRooms, listMembers, historyDesc, historyAsc, stats *sql.Stmt
}

const roomCols = `id, namespace, name, private, max_members, read_only, history_max,
	retention_ns, last_offset, member_count, create_time, update_time, epoch, empty_ttl_ns`

const messageCols = `offset, sender, session_id, client_id, payload, create_time`

const (
	qInsertRoom = `INSERT INTO rooms (namespace, name, private, max_members, read_only,
		history_max, retention_ns, last_offset, member_count, create_time, update_time, epoch, empty_ttl_ns)
	VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?)
	ON CONFLICT (namespace, name) DO NOTHING`

	// A NULL argument leaves its column as it is.
	qUpdateRoom = `UPDATE rooms SET
		private = coalesce(?3, private),
		max_members = coalesce(?4, max_members),
		read_only = coalesce(?5, read_only),
		history_max = coalesce(?6, history_max),
		retention_ns = coalesce(?7, retention_ns),
		update_time = ?8,
		empty_ttl_ns = coalesce(?9, empty_ttl_ns)
	WHERE namespace = ?1 AND name = ?2
	RETURNING ` + roomCols

	qDeleteRoom = `DELETE FROM rooms WHERE namespace = ? AND name = ?`

	qRoom = `SELECT ` + roomCols + ` FROM rooms WHERE namespace = ? AND name = ?`

	qMember       = `SELECT join_time FROM members WHERE room_id = ? AND user_id = ?`
	qInsertMember = `INSERT INTO members (room_id, user_id, join_time, ephemeral) VALUES (?, ?, ?, ?)`
	qDeleteMember = `DELETE FROM members WHERE room_id = ? AND user_id = ?`
	qAddMembers   = `UPDATE rooms SET member_count = member_count + ?, empty_since = 0 WHERE id = ?`

	qInsertSession = `INSERT INTO sessions (room_id, user_id, session_id, lease) VALUES (?, ?, ?, ?)
	ON CONFLICT DO UPDATE SET lease = excluded.lease`
	qDeleteSession = `DELETE FROM sessions WHERE room_id = ? AND user_id = ? AND session_id = ?`
	qCountSessions = `SELECT count(*) FROM sessions WHERE room_id = ? AND user_id = ?`

	// A publish's checks in one statement: the room, whether ?3 may publish
	// ('' for a system message may), and the message its client id ?4 was
	// last accepted for, if any ('' for none).
	qPublishCheck = `SELECT r.id, r.read_only, r.history_max, r.last_offset,
		?3 = '' OR EXISTS (SELECT 1 FROM members WHERE room_id = r.id AND user_id = ?3),
		d.offset, d.create_time
	FROM rooms r
	LEFT JOIN dedupe d ON ?4 != '' AND d.room_id = r.id AND d.sender = ?3 AND d.client_id = ?4
	WHERE r.namespace = ?1 AND r.name = ?2`
	qMessage       = `SELECT ` + messageCols + ` FROM messages WHERE room_id = ? AND offset = ?`
	qInsertMessage = `INSERT INTO messages (room_id, offset, sender, session_id, client_id,
		payload, create_time)
	VALUES (?, ?, ?, ?, ?, ?, ?)`
	qSetLastOffset = `UPDATE rooms SET last_offset = ? WHERE id = ?`
	qUpsertDedupe  = `INSERT INTO dedupe (room_id, sender, client_id, offset, create_time) VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (room_id, sender, client_id) DO UPDATE
	SET offset = excluded.offset, create_time = excluded.create_time`
	qTrim  = `DELETE FROM messages WHERE room_id = ? AND offset <= ?`
	qPurge = `DELETE FROM messages WHERE room_id = ?1 AND (?2 = 0 OR offset < ?2)`

	// ?1 is now; a room without retention yields NULL, which deletes nothing.
	qSweepMessages = `DELETE FROM messages
	WHERE room_id IN (SELECT id FROM rooms WHERE retention_ns > 0)
		AND create_time < ?1 - (SELECT retention_ns FROM rooms WHERE id = messages.room_id)`
	qSweepDedupe = `DELETE FROM dedupe WHERE create_time < ?`

	qSaveSession = `INSERT INTO saved_sessions (namespace, id, data, expire_time) VALUES (?, ?, ?, ?)
	ON CONFLICT (namespace, id) DO UPDATE SET data = excluded.data, expire_time = excluded.expire_time`
	// Deleting with RETURNING makes taking a session one atomic statement.
	qTakeSession   = `DELETE FROM saved_sessions WHERE namespace = ? AND id = ? RETURNING data, expire_time`
	qSweepSessions = `DELETE FROM saved_sessions WHERE expire_time <= ?`

	// ?3 is the namespace filter ('' for all); ?4 and ?5 bound the name for
	// the prefix filter, ?5 NULL when no name is above every match.
	qListRooms = `SELECT ` + roomCols + ` FROM rooms
	WHERE (namespace, name) > (?1, ?2)
		AND (?3 = '' OR namespace = ?3)
		AND name >= ?4 AND (?5 IS NULL OR name < ?5)
	ORDER BY namespace, name
	LIMIT ?6`

	qListMembers = `SELECT m.user_id, m.join_time,
		(SELECT count(*) FROM sessions s WHERE s.room_id = m.room_id AND s.user_id = m.user_id)
	FROM members m
	WHERE m.room_id = ? AND m.user_id > ?
	ORDER BY m.user_id
	LIMIT ?`

	// HistoryLatest and HistoryBefore read backwards from an offset,
	// HistoryAfter forwards.
	qHistoryDesc = `SELECT ` + messageCols + ` FROM messages
	WHERE room_id = ? AND offset < ? ORDER BY offset DESC LIMIT ?`
	qHistoryAsc = `SELECT ` + messageCols + ` FROM messages
	WHERE room_id = ? AND offset > ? ORDER BY offset LIMIT ?`

	qStats = `WITH r AS (SELECT id FROM rooms WHERE ?1 = '' OR namespace = ?1)
	SELECT
		(SELECT count(*) FROM r),
		(SELECT count(*) FROM members WHERE room_id IN r),
		(SELECT count(*) FROM sessions WHERE room_id IN r),
		(SELECT count(*) FROM messages WHERE room_id IN r)`
)

// preparer is a *sql.DB or a *sql.Conn.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

func (st *statements) prepare(ctx context.Context, w *sql.Conn, r *sql.DB) error {
	for _, p := range []struct {
		dst   **sql.Stmt
		db    preparer
		query string
	}{
		{&st.insertRoom, w, qInsertRoom},
		{&st.updateRoom, w, qUpdateRoom},
		{&st.deleteRoom, w, qDeleteRoom},
		{&st.roomW, w, qRoom},
		{&st.member, w, qMember},
		{&st.insertMember, w, qInsertMember},
		{&st.deleteMember, w, qDeleteMember},
		{&st.addMembers, w, qAddMembers},
		{&st.insertSession, w, qInsertSession},
		{&st.deleteSession, w, qDeleteSession},
		{&st.countSessions, w, qCountSessions},
		{&st.publishCheck, w, qPublishCheck},
		{&st.message, w, qMessage},
		{&st.insertMessage, w, qInsertMessage},
		{&st.setLastOffset, w, qSetLastOffset},
		{&st.upsertDedupe, w, qUpsertDedupe},
		{&st.trim, w, qTrim},
		{&st.purge, w, qPurge},
		{&st.sweepMsgs, w, qSweepMessages},
		{&st.sweepDedup, w, qSweepDedupe},
		{&st.saveSession, w, qSaveSession},
		{&st.takeSession, w, qTakeSession},
		{&st.sweepSessions, w, qSweepSessions},
		{&st.savepoint, w, "SAVEPOINT write"},
		{&st.rollbackTo, w, "ROLLBACK TO write"},
		{&st.release, w, "RELEASE write"},
		{&st.begin, w, "BEGIN IMMEDIATE"},
		{&st.commit, w, "COMMIT"},
		{&st.rollback, w, "ROLLBACK"},
		{&st.roomR, r, qRoom},
		{&st.listRooms, r, qListRooms},
		{&st.listMembers, r, qListMembers},
		{&st.historyDesc, r, qHistoryDesc},
		{&st.historyAsc, r, qHistoryAsc},
		{&st.stats, r, qStats},
	} {
		stmt, err := p.db.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.query, err)
		}
		*p.dst = stmt
		st.all = append(st.all, stmt)
	}
	return nil
}

func (st *statements) close() error {
	var err error
	for _, stmt := range st.all {
		err = errors.Join(err, stmt.Close())
	}
	return err
}
