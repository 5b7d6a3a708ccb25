package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

func testConcurrentPublish(t *testing.T, s store.Store) {
	const workers, perWorker = 8, 100
	key := store.RoomKey{Namespace: "acme", Name: "busy"}
	createRoom(t, s, key, store.RoomOptions{}, t0)
	for w := range workers {
		addMember(t, s, key, fmt.Sprintf("u%d", w))
	}

	var (
		mu       sync.Mutex
		payloads = make(map[uint64]string) // by offset
		wg       sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			var last uint64
			for i := range perWorker {
				payload := fmt.Sprintf("w%d-%d", w, i)
				m, dup, err := s.Publish(t.Context(), store.PublishParams{
					Room:            key,
					Sender:          fmt.Sprintf("u%d", w),
					Payload:         payload,
					ClientMessageID: payload,
					Now:             at(time.Duration(i) * time.Millisecond),
					DedupeSince:     at(-time.Hour),
				})
				if err != nil || dup {
					t.Errorf("Publish %s: duplicate %v, error %v", payload, dup, err)
					return
				}
				if m.Offset <= last {
					t.Errorf("Publish %s: offset %d after %d from the same goroutine", payload, m.Offset, last)
				}
				last = m.Offset
				mu.Lock()
				if prev, ok := payloads[m.Offset]; ok {
					t.Errorf("offset %d given to both %s and %s", m.Offset, prev, payload)
				}
				payloads[m.Offset] = payload
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	const n = workers * perWorker
	offs := make([]uint64, 0, len(payloads))
	for o := range payloads {
		offs = append(offs, o)
	}
	slices.Sort(offs)
	check(t, "offsets returned by Publish", seq(1, n), offs)
	check(t, "LastOffset", uint64(n), getRoom(t, s, key).LastOffset)

	msgs := All(t, s, key)
	check(t, "offsets in History", seq(1, n), Offsets(msgs))
	for _, m := range msgs {
		if m.Payload != payloads[m.Offset] {
			t.Errorf("History: offset %d holds %q, Publish returned it for %q", m.Offset, m.Payload, payloads[m.Offset])
		}
	}
}

func testConcurrentDedupe(t *testing.T, s store.Store) {
	const workers = 8
	key := store.RoomKey{Namespace: "acme", Name: "retries"}
	createRoom(t, s, key, store.RoomOptions{}, t0)

	var (
		mu     sync.Mutex
		stored int
		wg     sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			m, dup, err := s.Publish(t.Context(), store.PublishParams{
				Room:            key,
				Payload:         "once",
				ClientMessageID: "same",
				Now:             at(time.Duration(w) * time.Millisecond),
				DedupeSince:     at(-time.Hour),
			})
			if err != nil {
				t.Errorf("Publish: %v", err)
				return
			}
			if m.Offset != 1 {
				t.Errorf("Publish: offset %d, want 1", m.Offset)
			}
			if !dup {
				mu.Lock()
				stored++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	check(t, "count of publishes not reported as duplicates", 1, stored)
	check(t, "offsets in History", []uint64{1}, Offsets(All(t, s, key)))
	check(t, "LastOffset", uint64(1), getRoom(t, s, key).LastOffset)
}

func testConcurrentJoin(t *testing.T, s store.Store) {
	const users, limit = 20, 5
	key := store.RoomKey{Namespace: "acme", Name: "limited"}
	createRoom(t, s, key, store.RoomOptions{MaxMembers: limit}, t0)

	var (
		mu     sync.Mutex
		joined []string
		wg     sync.WaitGroup
	)
	for u := range users {
		wg.Go(func() {
			user := fmt.Sprintf("u%02d", u)
			res, err := s.Join(t.Context(), store.JoinParams{Room: key, UserID: user, SessionID: "s", Now: t0})
			switch {
			case errors.Is(err, store.ErrRoomFull):
			case err != nil:
				t.Errorf("Join %s: %v", user, err)
			case res.Room.MemberCount > limit:
				t.Errorf("Join %s: MemberCount %d beyond the limit %d", user, res.Room.MemberCount, limit)
			default:
				mu.Lock()
				joined = append(joined, user)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(joined)
	var want []store.Member
	for _, u := range joined {
		want = append(want, store.Member{UserID: u, JoinTime: t0, Sessions: 1})
	}
	check(t, "count of successful joins", limit, len(joined))
	check(t, "ListMembers", want, listMembers(t, s, key, "", users))
	check(t, "MemberCount", uint32(limit), getRoom(t, s, key).MemberCount)

	// Many sessions of one user joining at once make one membership.
	open := store.RoomKey{Namespace: "acme", Name: "open"}
	createRoom(t, s, open, store.RoomOptions{}, t0)
	var newMembers int
	for i := range users {
		wg.Go(func() {
			res, err := s.Join(t.Context(), store.JoinParams{Room: open, UserID: "u", SessionID: fmt.Sprintf("s%d", i), Now: t0})
			if err != nil {
				t.Errorf("Join: %v", err)
				return
			}
			if res.Joined {
				mu.Lock()
				newMembers++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	check(t, "count of joins reported as new", 1, newMembers)
	check(t, "ListMembers", []store.Member{{UserID: "u", JoinTime: t0, Sessions: users}}, listMembers(t, s, open, "", 10))
	check(t, "MemberCount", uint32(1), getRoom(t, s, open).MemberCount)
}

// testConcurrentPublishTrim publishes from many goroutines at once into rooms
// that keep a few messages, so that publishes which share a commit trim
// together: each room must keep exactly its newest messages.
func testConcurrentPublishTrim(t *testing.T, s store.Store) {
	const workers, perWorker, keep = 8, 25, 5
	rooms := []store.RoomKey{{Namespace: "acme", Name: "short"}, {Namespace: "acme", Name: "shorter"}}
	for _, k := range rooms {
		createRoom(t, s, k, store.RoomOptions{HistoryMaxMessages: keep}, t0)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				p := store.PublishParams{Room: rooms[(w+i)%len(rooms)], Payload: fmt.Sprintf("w%d-%d", w, i), Now: t0}
				if _, _, err := s.Publish(t.Context(), p); err != nil {
					t.Errorf("Publish %s: %v", p.Payload, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, k := range rooms {
		last := getRoom(t, s, k).LastOffset
		check(t, "LastOffset of "+k.Name, uint64(workers*perWorker/len(rooms)), last)
		check(t, "offsets kept in "+k.Name, seq(last-keep+1, last), Offsets(All(t, s, k)))
	}
}
