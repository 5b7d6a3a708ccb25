package sqlite

import (
	"context"
	"time"
)

// Checkpoints copy committed pages from the write-ahead log into the
// database file. By default SQLite runs one in the connection that commits,
// whenever the log has grown past 1,000 pages, so every so often a commit
// waited for the copy and two fsyncs, and with it every publish queued
// behind it: at a commit per chat message, those stalls set the slowest
// percent of deliveries. The store checkpoints on a connection of its own
// instead, from a goroutine, while the writer goes on committing.
//
// Frames committed during a checkpoint are left to the next one, so under a
// steady stream of commits the log may never be copied to its end, and
// SQLite starts a log over only once it is. The writer therefore keeps a
// checkpoint of its own, at checkpointBackstop pages: by then the store's
// checkpoints have copied most of the log, and the writer's is short. The log
// file may grow to about that size (40 MB of 4 KB pages).
const (
	// defaultCheckpointInterval is how long commits gather in the log
	// before a checkpoint: one of many pages costs little more than one of
	// a few.
	defaultCheckpointInterval = 200 * time.Millisecond
	checkpointBackstop        = 10_000 // pages
)

// noteCommit tells the checkpointer that the log has grown.
func (s *Store) noteCommit() {
	select {
	case s.checkpointDue <- struct{}{}:
	default:
	}
}

// checkpoints runs until the store closes, checkpointing a while after each
// commit.
func (s *Store) checkpoints(interval time.Duration) {
	wait := time.NewTimer(interval)
	wait.Stop()
	failed := 0 // checkpoints failed in a row
	for {
		select {
		case <-s.checkpointDue:
		case <-s.closing:
			return
		}
		wait.Reset(interval)
		select {
		case <-wait.C:
		case <-s.closing:
			return
		}
		// PASSIVE waits for no one: it copies what no reader still needs
		// and leaves the rest. One that fails (another checkpoint, the
		// writer's, holding the log) is tried again later; the backstop
		// bounds the log meanwhile. A run of failures is logged once as it
		// begins and once as it ends.
		if _, err := s.cp.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
			if failed == 0 {
				s.log.Warn("checkpoint failed; trying again", "err", err)
			}
			failed++
			s.noteCommit()
			continue
		}
		if failed > 0 {
			s.log.Info("checkpoints succeed again", "failed", failed)
			failed = 0
		}
	}
}
