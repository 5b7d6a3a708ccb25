package sqlite

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// walFrames is how many frames the log file at path+"-wal" has room for: it
// is written from its start again after a complete checkpoint, never
// shortened, so its size is the most frames it has held.
func walFrames(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	const header, frame = 32, 24 + 4096
	return (fi.Size() - header) / frame
}

// publishMany publishes n messages of about 1 KB to a new room of s named
// name.
func publishMany(t *testing.T, s *Store, name string, n int) {
	t.Helper()
	ctx := t.Context()
	now := time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)
	room := store.RoomKey{Namespace: "acme", Name: name}
	if _, err := s.CreateRoom(ctx, room, store.RoomOptions{HistoryMaxMessages: 100_000}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Join(ctx, store.JoinParams{Room: room, UserID: "u1", SessionID: "s", Now: now}); err != nil {
		t.Fatal(err)
	}
	payload := strings.Repeat("x", 1000)
	for i := range n {
		p := store.PublishParams{Room: room, Sender: "u1", Payload: payload, ClientMessageID: fmt.Sprint("m", i), Now: now, DedupeSince: now.Add(-time.Hour)}
		if _, _, err := s.Publish(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCommitsDoNotCheckpoint commits well past SQLite's default checkpoint
// threshold (1,000 pages) with the store's checkpointer idle: the log must
// have kept every frame, the writer having checkpointed none of it.
func TestCommitsDoNotCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rooms.db")
	s, err := Open(t.Context(), path, Options{checkpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	publishMany(t, s, "lobby", 1000)
	if n := walFrames(t, path); n < 2000 || n > checkpointBackstop {
		t.Errorf("the log holds %d frames after 1,000 commits; want them all (2,000 or more), fewer than the backstop's %d", n, checkpointBackstop)
	}
}

// TestCheckpointerCopiesTheLog commits a few hundred frames, fewer than any
// checkpoint threshold, and waits for the store's checkpointer to copy them
// into the database file.
func TestCheckpointerCopiesTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rooms.db")
	s, err := Open(t.Context(), path, Options{checkpointInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	publishMany(t, s, "lobby", 100)
	// The messages alone take some 100 KB of the file once copied.
	deadline := time.Now().Add(10 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() >= before.Size()+100_000 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the database file is %d bytes, %d before the commits: not checkpointed", fi.Size(), before.Size())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFailedCheckpointsAreLogged makes the checkpointer's connection fail:
// the store must say so once, not once a try, and keep committing.
func TestFailedCheckpointsAreLogged(t *testing.T) {
	var logged lockedBuffer
	path := filepath.Join(t.TempDir(), "rooms.db")
	s, err := Open(t.Context(), path, Options{checkpointInterval: time.Millisecond, Log: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.cp.Close(); err != nil {
		t.Fatal(err)
	}
	publishMany(t, s, "lobby", 50)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logged.String(), "checkpoint failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no failed checkpoint logged; the log: %q", logged.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The checkpointer keeps trying, every millisecond, while these commit.
	publishMany(t, s, "more", 50)
	if n := strings.Count(logged.String(), "checkpoint failed"); n != 1 {
		t.Errorf("a run of failed checkpoints logged %d times", n)
	}
}

// lockedBuffer is a log destination the checkpointer writes while the test
// reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
