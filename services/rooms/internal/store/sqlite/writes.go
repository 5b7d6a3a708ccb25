package sqlite

import (
	"context"
	"fmt"
	"runtime"
)

// write runs fn in a write transaction and returns its error: fn's changes
// are committed if and only if it returns nil. Writes other than publishes
// are committed in groups, as publishes are (see commitWrites), so fn runs its
// statements under the context it is given, not the caller's: one caller
// giving up must not interrupt a transaction that others share. Once queued,
// a write may be committed whatever happens to ctx, so write waits for the
// outcome rather than report a failure that did not happen.
func (s *Store) write(ctx context.Context, fn func(context.Context, *writeTx) error) error {
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.writes <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return errClosed
	}
	return <-req.done
}

type writeReq struct {
	ctx  context.Context
	fn   func(context.Context, *writeTx) error
	done chan error
}

// commitWrites runs until the store closes, committing queued writes in
// groups: a connect storm joins thousands of sockets to rooms at once, and a
// commit of many joins costs little more than a commit of one. Each write of
// a group runs inside its own savepoint, so that one refused (a private room,
// a full one) leaves the others' changes in place.
func (s *Store) commitWrites() {
	group := make([]*writeReq, 0, maxGroup)
	errs := make([]error, 0, maxGroup)
	for {
		var ok bool
		group, ok = nextGroup(s.writes, s.closing, group, func(req *writeReq) { req.done <- errClosed })
		if !ok {
			return
		}
		errs = s.commitWriteGroup(group, errs[:0])
		for i, req := range group {
			req.done <- errs[i]
		}
	}
}

// nextGroup waits for the first request on queue and returns it with those
// already waiting behind it, at most maxGroup of them. Once the store is
// closing it refuses whatever is still queued and reports false.
func nextGroup[R any](queue <-chan R, closing <-chan struct{}, group []R, refuse func(R)) ([]R, bool) {
	var first R
	select {
	case first = <-queue:
	case <-closing:
		for {
			select {
			case req := <-queue:
				refuse(req)
			default:
				return group[:0], false
			}
		}
	}
	group = append(group[:0], first)
	// Let the goroutines that are runnable run first: those writing queue
	// theirs within microseconds, and one commit of them all costs far less
	// CPU than several (each begins a transaction and writes its pages to the
	// log). With nothing else runnable, this returns at once.
	runtime.Gosched()
	for len(group) < maxGroup {
		select {
		case req := <-queue:
			group = append(group, req)
		default:
			return group, true
		}
	}
	return group, true
}

// commitWriteGroup runs each write of group in one transaction and returns
// their outcomes, all failed if the transaction cannot commit.
func (s *Store) commitWriteGroup(group []*writeReq, errs []error) []error {
	ctx := context.Background()
	if len(group) == 1 {
		// Alone, a write needs no savepoint: its transaction is its own.
		req := group[0]
		err := req.ctx.Err()
		if err == nil {
			err = s.transact(ctx, func(tx *writeTx) error { return req.fn(ctx, tx) })
		}
		return append(errs, err)
	}
	err := s.transact(ctx, func(tx *writeTx) error {
		for _, req := range group {
			if err := req.ctx.Err(); err != nil {
				errs = append(errs, err)
				continue
			}
			if _, err := tx.StmtContext(ctx, s.st.savepoint).ExecContext(ctx); err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
			err := req.fn(ctx, tx)
			if err != nil {
				if _, rerr := tx.StmtContext(ctx, s.st.rollbackTo).ExecContext(ctx); rerr != nil {
					return fmt.Errorf("rolling back to savepoint: %w", rerr)
				}
			}
			if _, rerr := tx.StmtContext(ctx, s.st.release).ExecContext(ctx); rerr != nil {
				return fmt.Errorf("releasing savepoint: %w", rerr)
			}
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		errs = errs[:0]
		for range group {
			errs = append(errs, err)
		}
	}
	return errs
}
