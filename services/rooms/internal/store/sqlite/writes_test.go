package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// TestWriteGroup commits many writes in one group and checks that each got
// its own outcome: refused joins and a write that failed after changing a row
// leave nothing behind, while the others in the same transaction stay.
func TestWriteGroup(t *testing.T) {
	ctx := t.Context()
	s, now := openTestStore(t)
	open := store.RoomKey{Namespace: "acme", Name: "open"}
	private := store.RoomKey{Namespace: "acme", Name: "private"}
	if _, err := s.CreateRoom(ctx, open, store.RoomOptions{}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRoom(ctx, private, store.RoomOptions{Private: true}, now); err != nil {
		t.Fatal(err)
	}

	// A write that waits holds the committer, so that everything queued
	// meanwhile is committed as one group.
	release := holdWriter(t, s, nil)

	const n = 10
	type outcome struct {
		user string
		room store.RoomKey
		err  error
	}
	out := make(chan outcome, 2*n+1)
	for i := range n {
		for _, room := range []store.RoomKey{open, private} {
			user := fmt.Sprintf("%s-%d", room.Name, i)
			go func() {
				_, err := s.Join(ctx, store.JoinParams{Room: room, UserID: user, SessionID: "s", Now: now})
				out <- outcome{user, room, err}
			}()
		}
	}
	errLate := errors.New("refused after writing")
	go func() {
		err := s.write(ctx, func(ctx context.Context, tx *writeTx) error {
			id, _, err := scanRoom(tx.StmtContext(ctx, s.st.roomW).QueryRowContext(ctx, open.Namespace, open.Name))
			if err != nil {
				return err
			}
			if _, err := tx.StmtContext(ctx, s.st.insertMember).ExecContext(ctx, id, "undone", nanos(now), false); err != nil {
				return err
			}
			return errLate
		})
		out <- outcome{"undone", open, err}
	}()
	for i := 0; len(s.writes) < 2*n+1; i++ {
		if i == 100_000 {
			t.Fatalf("%d writes queued, want %d", len(s.writes), 2*n+1)
		}
		runtime.Gosched()
	}
	if err := release(); err != nil {
		t.Fatalf("holding write: %v", err)
	}

	for range 2*n + 1 {
		o := <-out
		var want error
		switch {
		case o.user == "undone":
			want = errLate
		case o.room == private:
			want = store.ErrPrivate
		}
		if !errors.Is(o.err, want) || (want == nil && o.err != nil) {
			t.Errorf("%s joining %s: %v, want %v", o.user, o.room.Name, o.err, want)
		}
	}
	for room, want := range map[store.RoomKey]int{open: n, private: 0} {
		got, err := s.GetRoom(ctx, room)
		if err != nil {
			t.Fatal(err)
		}
		members, err := s.ListMembers(ctx, room, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		if int(got.MemberCount) != want || len(members) != want {
			t.Errorf("%s: member count %d and %d members listed, want %d", room.Name, got.MemberCount, len(members), want)
		}
	}
}

// TestCommitsStartNoGoroutines publishes one message at a time, each its own
// commit, and counts the goroutines the process starts meanwhile: none should
// be the commit's. database/sql's Tx started one per transaction and one per
// query in it, and each woke an idle thread; at a commit per chat message
// that cost more CPU than the statements.
func TestCommitsStartNoGoroutines(t *testing.T) {
	ctx := t.Context()
	s, now := openTestStore(t)
	room := store.RoomKey{Namespace: "acme", Name: "lobby"}
	if _, err := s.CreateRoom(ctx, room, store.RoomOptions{}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Join(ctx, store.JoinParams{Room: room, UserID: "u1", SessionID: "s", Now: now}); err != nil {
		t.Fatal(err)
	}
	const n = 200
	before := goroutinesCreated()
	for i := range n {
		p := store.PublishParams{Room: room, Sender: "u1", Payload: "hi", ClientMessageID: fmt.Sprint("m", i), Now: now, DedupeSince: now.Add(-time.Hour)}
		if _, _, err := s.Publish(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	// A few are the runtime's or the test framework's.
	if created := goroutinesCreated() - before; created > n/10 {
		t.Errorf("%d publishes, each committed alone, started %d goroutines", n, created)
	}
}

// holdWriter starts a write that holds the writer, inside its transaction,
// until release is called; the write then ends with err, which rolls it back
// unless err is nil, and release returns the write's outcome.
func holdWriter(t *testing.T, s *Store, err error) (release func() error) {
	t.Helper()
	started, hold := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- s.write(t.Context(), func(context.Context, *writeTx) error {
			close(started)
			<-hold
			return err
		})
	}()
	<-started
	return func() error {
		close(hold)
		return <-held
	}
}

// openTestStore opens a store that is closed when t ends, and returns it with
// the time to write at.
func openTestStore(t *testing.T) (*Store, time.Time) {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "rooms.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)
}

func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestRoomWritesWaitForOpenTransactions creates, updates and deletes rooms
// while a write transaction that will roll back is open: each must wait for
// it and commit on its own, not run inside it and vanish with it.
func TestRoomWritesWaitForOpenTransactions(t *testing.T) {
	ctx := t.Context()
	s, now := openTestStore(t)
	kept := store.RoomKey{Namespace: "acme", Name: "kept"}
	gone := store.RoomKey{Namespace: "acme", Name: "gone"}
	for _, k := range []store.RoomKey{kept, gone} {
		if _, err := s.CreateRoom(ctx, k, store.RoomOptions{}, now); err != nil {
			t.Fatal(err)
		}
	}
	fresh := store.RoomKey{Namespace: "acme", Name: "fresh"}
	readOnly := true
	writes := map[string]func() error{
		"create": func() error { _, err := s.CreateRoom(ctx, fresh, store.RoomOptions{}, now); return err },
		"update": func() error {
			_, err := s.UpdateRoom(ctx, kept, store.RoomOptionsPatch{ReadOnly: &readOnly}, now)
			return err
		},
		"delete": func() error { return s.DeleteRoom(ctx, gone) },
	}

	errRollback := errors.New("rolled back")
	release := holdWriter(t, s, errRollback)
	done := make(chan error, len(writes))
	for _, w := range writes {
		go func() { done <- w() }()
	}
	// Writes that do not wait finish within these yields, inside the open
	// transaction; writes that wait are still blocked when they end.
	finished := 0
	for i := 0; i < 10_000 && finished < len(writes); i++ {
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
			finished++
		default:
			runtime.Gosched()
		}
	}
	if err := release(); !errors.Is(err, errRollback) {
		t.Fatalf("held write: %v", err)
	}
	for ; finished < len(writes); finished++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}

	if _, err := s.GetRoom(ctx, fresh); err != nil {
		t.Errorf("created room: %v", err)
	}
	if r, err := s.GetRoom(ctx, kept); err != nil || !r.Options.ReadOnly {
		t.Errorf("updated room: %+v, %v", r.Options, err)
	}
	if _, err := s.GetRoom(ctx, gone); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted room: %v", err)
	}
}

// TestCanceledWriteRollsBack cancels a write's context inside its
// transaction, which then fails: the transaction must still be rolled back,
// leaving the writer free for the next write and nothing of the failed one.
func TestCanceledWriteRollsBack(t *testing.T) {
	s, now := openTestStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	failed := errors.New("failed after its context was canceled")
	room := store.RoomKey{Namespace: "acme", Name: "undone"}
	err := s.transact(ctx, func(tx *writeTx) error {
		if _, err := tx.StmtContext(ctx, s.st.insertRoom).ExecContext(ctx, room.Namespace, room.Name,
			false, 0, false, 0, 0, nanos(now), nanos(now), "e", 0); err != nil {
			return err
		}
		cancel()
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("transact: %v", err)
	}
	if _, err := s.CreateRoom(t.Context(), store.RoomKey{Namespace: "acme", Name: "next"}, store.RoomOptions{}, now); err != nil {
		t.Fatalf("the next write: %v", err)
	}
	if _, err := s.GetRoom(t.Context(), room); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the failed write's room: %v", err)
	}
}
