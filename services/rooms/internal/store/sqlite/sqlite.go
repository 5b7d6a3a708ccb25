// Package sqlite is the embedded storage backend of the rooms service: it
// implements store.Store on one SQLite database file, through the pure-Go
// modernc.org/sqlite driver, so that the service needs no database server.
//
// All writes go through one connection whose transactions start with BEGIN
// IMMEDIATE, so a room's next offset is read and assigned inside one
// serialized transaction. Reads use a separate pool; in WAL mode they see the
// last committed state without waiting for the writer.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/services/rooms/internal/store"

	// The driver registers itself as "sqlite".
	_ "modernc.org/sqlite"
)

// Options tune a Store.
type Options struct {
	// Synchronous is SQLite's synchronous setting: "NORMAL" (the default, ""),
	// which keeps every committed transaction across a crash of the process,
	// or "FULL", which also keeps it across a crash of the machine.
	Synchronous string
	// Committed is told about each group of publishes once it is committed;
	// see store.Committed.
	Committed store.Committed
	// Log gets what the store does on its own, such as checkpoints that
	// fail; nil logs nothing.
	Log *slog.Logger

	// checkpointInterval replaces defaultCheckpointInterval (tests).
	checkpointInterval time.Duration
}

// Store is a store.Store backed by one SQLite database file.
type Store struct {
	w, r *sql.DB
	// wc is the writer's one connection, held for the store's lifetime;
	// wmu keeps its transactions (of publishes and of other writes) apart.
	wc  *sql.Conn
	wmu sync.Mutex
	st  statements

	committed  store.Committed
	log        *slog.Logger
	publishes  chan *publishReq
	writes     chan *writeReq
	closing    chan struct{}
	committers sync.WaitGroup // commitPublishes, commitWrites and checkpoints
	// cp is the checkpointer's connection (see checkpoint.go); a commit
	// signals checkpointDue.
	cp            *sql.DB
	checkpointDue chan struct{}
	closeOnce     sync.Once
}

var _ store.Store = (*Store)(nil)

// schemaVersion is stored in PRAGMA user_version. A database written by a
// newer version is refused rather than misread.
const schemaVersion = 4

// The messages and dedupe tables hold most of the rows; WITHOUT ROWID keeps
// each of them in its primary-key b-tree so that a room's messages are read
// and trimmed as one contiguous range. Sessions hang off members so that
// removing a member or a room removes its sessions with it.
const schema = `
CREATE TABLE IF NOT EXISTS rooms (
	id           INTEGER PRIMARY KEY,
	namespace    TEXT    NOT NULL,
	name         TEXT    NOT NULL,
	private      INTEGER NOT NULL,
	max_members  INTEGER NOT NULL,
	read_only    INTEGER NOT NULL,
	history_max  INTEGER NOT NULL,
	retention_ns INTEGER NOT NULL,
	last_offset  INTEGER NOT NULL,
	member_count INTEGER NOT NULL,
	create_time  INTEGER NOT NULL,
	update_time  INTEGER NOT NULL,
	epoch        TEXT    NOT NULL,
	empty_ttl_ns INTEGER NOT NULL DEFAULT 0,
	empty_since  INTEGER NOT NULL DEFAULT 0,
	UNIQUE (namespace, name)
);
CREATE TABLE IF NOT EXISTS members (
	room_id   INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
	user_id   TEXT    NOT NULL,
	join_time INTEGER NOT NULL,
	ephemeral INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (
	room_id    INTEGER NOT NULL,
	user_id    TEXT    NOT NULL,
	session_id TEXT    NOT NULL,
	lease      TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (room_id, user_id, session_id),
	FOREIGN KEY (room_id, user_id) REFERENCES members (room_id, user_id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
	room_id     INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
	offset      INTEGER NOT NULL,
	sender      TEXT    NOT NULL,
	session_id  TEXT    NOT NULL,
	client_id   TEXT    NOT NULL,
	payload     TEXT    NOT NULL,
	create_time INTEGER NOT NULL,
	PRIMARY KEY (room_id, offset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dedupe (
	room_id     INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
	sender      TEXT    NOT NULL,
	client_id   TEXT    NOT NULL,
	offset      INTEGER NOT NULL,
	create_time INTEGER NOT NULL,
	PRIMARY KEY (room_id, sender, client_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
	id          TEXT    NOT NULL PRIMARY KEY,
	expire_time INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_by_lease ON sessions (lease) WHERE lease != '';
CREATE TABLE IF NOT EXISTS saved_sessions (
	namespace   TEXT    NOT NULL,
	id          TEXT    NOT NULL,
	data        BLOB    NOT NULL,
	expire_time INTEGER NOT NULL,
	PRIMARY KEY (namespace, id)
) WITHOUT ROWID;
`

// busyTimeout bounds how long a connection waits for a lock held by another
// process sharing the file (or by a checkpoint) before failing with
// SQLITE_BUSY. Within this process writes are already serialized: they all
// run in Store.transact, on the writer's one held connection.
const busyTimeout = 5 * time.Second

// Open opens the database at path, creating the file, its parent directory
// and the schema if they do not exist.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	synchronous := strings.ToUpper(opts.Synchronous)
	switch synchronous {
	case "":
		synchronous = "NORMAL"
	case "NORMAL", "FULL":
	default:
		return nil, fmt.Errorf("open %s: synchronous %q: want NORMAL or FULL", path, opts.Synchronous)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}

	s := &Store{committed: opts.Committed, log: cmp.Or(opts.Log, slog.New(slog.DiscardHandler))}
	if err := s.open(ctx, abs, synchronous, cmp.Or(opts.checkpointInterval, defaultCheckpointInterval)); err != nil {
		return nil, errors.Join(fmt.Errorf("open %s: %w", path, err), s.Close())
	}
	return s, nil
}

func (s *Store) open(ctx context.Context, path, synchronous string, checkpointEvery time.Duration) error {
	busy := fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds())
	var err error
	// The writer is opened, and the schema settled, before any reader exists,
	// so that readers only ever see a database in WAL mode.
	s.w, err = sql.Open("sqlite", dsn(path,
		[]string{busy, "foreign_keys(1)", "journal_mode(WAL)", "synchronous(" + synchronous + ")",
			fmt.Sprintf("wal_autocheckpoint(%d)", checkpointBackstop)},
		// Only migrate begins a transaction through database/sql; the
		// store's own begin with their BEGIN IMMEDIATE statement.
		"_txlock=immediate"))
	if err != nil {
		return err
	}
	s.w.SetMaxOpenConns(1)
	if err := migrate(ctx, s.w); err != nil {
		return err
	}
	if s.wc, err = s.w.Conn(ctx); err != nil {
		return err
	}

	s.r, err = sql.Open("sqlite", dsn(path, []string{busy, "query_only(1)"}))
	if err != nil {
		return err
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.r.SetMaxOpenConns(n)
	// Idle readers are kept so that their prepared statements are reused.
	s.r.SetMaxIdleConns(n)
	if err := s.r.PingContext(ctx); err != nil {
		return err
	}
	if err := s.st.prepare(ctx, s.wc, s.r); err != nil {
		return err
	}
	// The checkpointer's connection syncs as the writer's does.
	s.cp, err = sql.Open("sqlite", dsn(path, []string{busy, "synchronous(" + synchronous + ")"}))
	if err != nil {
		return err
	}
	s.cp.SetMaxOpenConns(1)
	s.publishes = make(chan *publishReq, maxGroup)
	s.writes = make(chan *writeReq, maxGroup)
	s.closing = make(chan struct{})
	s.checkpointDue = make(chan struct{}, 1)
	s.committers.Go(s.commitPublishes)
	s.committers.Go(s.commitWrites)
	s.committers.Go(func() { s.checkpoints(checkpointEvery) })
	return nil
}

// dsn builds a file: URI so that any path, including one with '?' or '#',
// reaches SQLite intact.
func dsn(path string, pragmas []string, extra ...string) string {
	q := make([]string, 0, len(pragmas)+len(extra))
	for _, p := range pragmas {
		q = append(q, "_pragma="+url.QueryEscape(p))
	}
	q = append(q, extra...)
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: strings.Join(q, "&")}
	return u.String()
}

func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // after Commit, a no-op whose error says so
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this program's %d", v, schemaVersion)
	}
	if v == 1 {
		// Version 2 gave rooms an epoch; each existing room gets its own.
		if _, err := tx.ExecContext(ctx, `ALTER TABLE rooms ADD COLUMN epoch TEXT NOT NULL DEFAULT '';
			UPDATE rooms SET epoch = lower(hex(randomblob(8)))`); err != nil {
			return fmt.Errorf("migrate schema 1 to 2: %w", err)
		}
	}
	if v >= 1 && v <= 3 {
		// Version 4 deletes rooms left empty, when their options say so.
		if _, err := tx.ExecContext(ctx, `ALTER TABLE rooms ADD COLUMN empty_ttl_ns INTEGER NOT NULL DEFAULT 0;
			ALTER TABLE rooms ADD COLUMN empty_since INTEGER NOT NULL DEFAULT 0`); err != nil {
			return fmt.Errorf("migrate schema to 4: %w", err)
		}
	}
	if v == 1 || v == 2 {
		// Version 3 holds sessions under leases and ends ephemeral members.
		if _, err := tx.ExecContext(ctx, `ALTER TABLE members ADD COLUMN ephemeral INTEGER NOT NULL DEFAULT 0;
			ALTER TABLE sessions ADD COLUMN lease TEXT NOT NULL DEFAULT ''`); err != nil {
			return fmt.Errorf("migrate schema to 3: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	if v < schemaVersion {
		// PRAGMA takes no bound parameters.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Close closes the database. It must not be called while other calls run.
func (s *Store) Close() error {
	if s.closing != nil {
		s.closeOnce.Do(func() { close(s.closing) })
		s.committers.Wait()
	}
	err := s.st.close()
	if s.wc != nil {
		err = errors.Join(err, s.wc.Close())
	}
	if s.r != nil {
		err = errors.Join(err, s.r.Close())
	}
	if s.cp != nil {
		err = errors.Join(err, s.cp.Close())
	}
	if s.w != nil {
		err = errors.Join(err, s.w.Close())
	}
	return err
}

// transact runs fn in an immediate transaction on the writer connection.
// Every statement of the writer runs in one: a statement run on the held
// connection outside transact would join whatever transaction another
// goroutine has open there, and be rolled back with it.
func (s *Store) transact(ctx context.Context, fn func(*writeTx) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, err := s.st.begin.ExecContext(ctx); err != nil {
		return err
	}
	if err := fn(&writeTx{c: s.wc}); err != nil {
		return errors.Join(err, s.rollback())
	}
	if _, err := s.st.commit.ExecContext(ctx); err != nil {
		return errors.Join(err, s.rollback())
	}
	s.noteCommit()
	return nil
}

// rollback ends a failed transaction. It runs under no context: one the
// caller canceled would refuse the ROLLBACK and leave the transaction open on
// the held connection, where the next BEGIN would fail. SQLite rolls some
// back by itself (after an I/O error in COMMIT, or an interrupted
// statement); the ROLLBACK's complaint that none is open is then no error.
func (s *Store) rollback() error {
	_, err := s.st.rollback.ExecContext(context.Background())
	if err != nil && strings.Contains(err.Error(), "no transaction is active") {
		return nil
	}
	return err
}

// writeTx is a transaction on the writer connection, which runs the
// statements of the writes. The store begins and ends it with statements of
// its own rather than with database/sql's Tx, which starts a goroutine for
// every transaction and for every query in one, to watch their contexts: at
// a commit per chat message, those goroutines, and the idle threads the
// scheduler wakes to run them, cost more than the statements.
type writeTx struct{ c *sql.Conn }

// StmtContext returns stmt, prepared on the writer connection already; it
// has the shape of sql.Tx's.
func (t *writeTx) StmtContext(_ context.Context, stmt *sql.Stmt) *sql.Stmt { return stmt }

func (t *writeTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.c.ExecContext(ctx, query, args...)
}

func (t *writeTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.c.QueryContext(ctx, query, args...)
}

func (t *writeTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.c.QueryRowContext(ctx, query, args...)
}

// read runs fn in a read transaction, so that the statements it runs see one
// snapshot of the database.
func (s *Store) read(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback() // nothing to keep: ending it either way frees the snapshot
	return fn(tx)
}

// eachRow calls scan on every row of rows and closes them, for a write
// transaction that runs more statements once it has read them (its one
// connection is busy until the rows are closed).
func eachRow(rows *sql.Rows, scan func(*sql.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}

// nanos converts t to the stored form, clamping times outside int64
// nanoseconds (such as the zero time) to the nearest representable one.
func nanos(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

func fromNanos(ns int64) time.Time {
	return time.Unix(0, ns).UTC()
}

// clampOffset converts an offset argument to SQLite's signed integers.
// Stored offsets never come near the limit, so a larger argument means the
// same as the largest one.
func clampOffset(u uint64) int64 {
	return int64(min(u, math.MaxInt64))
}
