package sqlite_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/services/rooms/internal/store"
	"github.com/parleyhq/parley/services/rooms/internal/store/sqlite"
	"github.com/parleyhq/parley/services/rooms/internal/store/storetest"
)

func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		t.Run(sync, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, committed store.Committed) store.Store {
				s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rooms.db"), sqlite.Options{Synchronous: sync, Committed: committed})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				return s
			})
		})
	}
}

var (
	key = store.RoomKey{Namespace: "acme", Name: "general"}
	t0  = time.Date(2031, time.March, 4, 5, 6, 7, 123456789, time.FixedZone("UTC+2", 2*60*60))
)

// TestPublishSurvivesReopen checks that an acknowledged publish is in the
// file: both for a process that stopped without closing the store, as after a
// crash, and after a clean close.
func TestPublishSurvivesReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "data", "rooms.db")
	first := open(t, path)
	if _, err := first.CreateRoom(ctx, key, store.RoomOptions{}, t0); err != nil {
		t.Fatal(err)
	}
	want, _, err := first.Publish(ctx, store.PublishParams{Room: key, Payload: "kept", ClientMessageID: "c1", Now: t0})
	if err != nil {
		t.Fatal(err)
	}

	// The first store is left open and unused, as if its process had died.
	second := open(t, path)
	checkHistory(t, second, want)
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	third := open(t, path)
	defer third.Close()
	checkHistory(t, third, want)
	next, dup, err := third.Publish(ctx, store.PublishParams{Room: key, Payload: "kept", ClientMessageID: "c1", Now: t0, DedupeSince: t0})
	if err != nil || !dup || next.Offset != 1 {
		t.Errorf("Publish of a duplicate after reopening: offset %d, duplicate %v, error %v; want 1, true, nil", next.Offset, dup, err)
	}
}

func checkHistory(t *testing.T, s *sqlite.Store, want store.Message) {
	t.Helper()
	msgs, err := s.History(t.Context(), store.HistoryQuery{Room: key, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0] != want {
		t.Errorf("History after reopening: %+v, want [%+v]", msgs, want)
	}
}

func TestTimesAreUTC(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "rooms.db"))
	defer s.Close()
	room, err := s.CreateRoom(t.Context(), key, store.RoomOptions{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if room.CreateTime.Location() != time.UTC || !room.CreateTime.Equal(t0) {
		t.Errorf("CreateTime %v, want %v in UTC", room.CreateTime, t0)
	}
	room, err = s.GetRoom(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if room.UpdateTime.Location() != time.UTC || !room.UpdateTime.Equal(t0) {
		t.Errorf("UpdateTime %v, want %v in UTC", room.UpdateTime, t0)
	}
}

// TestOpenSettings checks what Open leaves in the file for any later opener:
// WAL mode and the schema version.
func TestOpenSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "rooms.db")
	if err := open(t, path).Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	var version int
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || version != 4 {
		t.Errorf("journal_mode %q, user_version %d; want wal, 4", mode, version)
	}
}

// TestOpenMigratesSchema1 opens a database written before rooms had epochs
// and sessions leases: its rooms are kept, each with an epoch of its own, and
// its members and sessions too.
func TestOpenMigratesSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rooms.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`CREATE TABLE rooms (
		id INTEGER PRIMARY KEY, namespace TEXT NOT NULL, name TEXT NOT NULL, private INTEGER NOT NULL,
		max_members INTEGER NOT NULL, read_only INTEGER NOT NULL, history_max INTEGER NOT NULL,
		retention_ns INTEGER NOT NULL, last_offset INTEGER NOT NULL, member_count INTEGER NOT NULL,
		create_time INTEGER NOT NULL, update_time INTEGER NOT NULL, UNIQUE (namespace, name));
	CREATE TABLE members (room_id INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE, user_id TEXT NOT NULL,
		join_time INTEGER NOT NULL, PRIMARY KEY (room_id, user_id)) WITHOUT ROWID;
	CREATE TABLE sessions (room_id INTEGER NOT NULL, user_id TEXT NOT NULL, session_id TEXT NOT NULL,
		PRIMARY KEY (room_id, user_id, session_id),
		FOREIGN KEY (room_id, user_id) REFERENCES members (room_id, user_id) ON DELETE CASCADE) WITHOUT ROWID;
	INSERT INTO rooms VALUES (1, '/', 'a', 0, 0, 0, 0, 0, 7, 1, 0, 0), (2, '/', 'b', 0, 0, 0, 0, 0, 0, 0, 0, 0);
	INSERT INTO members VALUES (1, 'alice', 0);
	INSERT INTO sessions VALUES (1, 'alice', 's1');
	PRAGMA user_version = 1;`)
	if err == nil {
		err = db.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, path)
	defer s.Close()
	a, errA := s.GetRoom(t.Context(), store.RoomKey{Namespace: "/", Name: "a"})
	b, errB := s.GetRoom(t.Context(), store.RoomKey{Namespace: "/", Name: "b"})
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if a.LastOffset != 7 || a.Epoch == "" || b.Epoch == "" || a.Epoch == b.Epoch {
		t.Errorf("after migration: a = %+v, b = %+v", a, b)
	}
	// A session from before leases has none and outlives every expiry.
	if _, err := s.ExpireLeases(t.Context(), time.Now()); err != nil {
		t.Fatal(err)
	}
	ms, err := s.ListMembers(t.Context(), store.RoomKey{Namespace: "/", Name: "a"}, "", 10)
	if err != nil || len(ms) != 1 || ms[0].UserID != "alice" || ms[0].Sessions != 1 {
		t.Errorf("members after migration: %+v, %v", ms, err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rooms.db")
	if err := open(t, path).Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := sqlite.Open(t.Context(), path, sqlite.Options{}); err == nil {
		s.Close()
		t.Fatal("Open of a database with a newer schema succeeded")
	}
}

func TestOpenRefusesUnknownSynchronous(t *testing.T) {
	if s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rooms.db"), sqlite.Options{Synchronous: "OFF"}); err == nil {
		s.Close()
		t.Fatal("Open with synchronous OFF succeeded")
	}
}

// TestOpenOddPath checks that a path with URI metacharacters is a plain path.
func TestOpenOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?with#odd%chars")
	s := open(t, filepath.Join(dir, "rooms.db"))
	if _, err := s.CreateRoom(t.Context(), key, store.RoomOptions{}, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, filepath.Join(dir, "rooms.db"))
	defer s.Close()
	if _, err := s.GetRoom(t.Context(), key); err != nil {
		t.Fatalf("GetRoom after reopening: %v", err)
	}
}

// BenchmarkPublish measures publishes from a few concurrent callers and from
// many (parallelism times GOMAXPROCS goroutines), whose publishes share
// commits.
func BenchmarkPublish(b *testing.B) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		for _, parallelism := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/parallelism=%d", sync, parallelism), func(b *testing.B) {
				s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "rooms.db"), sqlite.Options{Synchronous: sync})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				if _, err := s.CreateRoom(b.Context(), key, store.RoomOptions{HistoryMaxMessages: 1000}, t0); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Join(b.Context(), store.JoinParams{Room: key, UserID: "u1", SessionID: "s1", Now: t0}); err != nil {
					b.Fatal(err)
				}
				var n atomic.Int64
				b.SetParallelism(parallelism)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := n.Add(1)
						_, _, err := s.Publish(b.Context(), store.PublishParams{
							Room:            key,
							Sender:          "u1",
							Payload:         "a message of typical length for a chat room, give or take",
							ClientMessageID: fmt.Sprintf("c%d", i),
							SessionID:       "s1",
							Now:             t0.Add(time.Duration(i) * time.Millisecond),
							DedupeSince:     t0,
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
