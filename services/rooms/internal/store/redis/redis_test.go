package redis_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	goredis "github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/services/kit/redistest"
	"github.com/parleyhq/parley/services/rooms/internal/store"
	"github.com/parleyhq/parley/services/rooms/internal/store/redis"
	"github.com/parleyhq/parley/services/rooms/internal/store/storetest"
)

// deployment is a Redis to test against: one server or a Cluster.
type deployment struct {
	url   string
	nodes []string // the addresses of the primaries
}

func deployments(t *testing.T) []struct {
	name  string
	start func(t *testing.T) deployment
} {
	return []struct {
		name  string
		start func(t *testing.T) deployment
	}{
		{"server", func(t *testing.T) deployment {
			addr := redistest.Start(t)
			return deployment{url: "redis://" + addr, nodes: []string{addr}}
		}},
		{"cluster", func(t *testing.T) deployment {
			c := redistest.StartCluster(t)
			return deployment{url: c.URL(), nodes: c.Addrs()}
		}},
	}
}

// each runs f on a client of each primary.
func (d deployment) each(t *testing.T, f func(*goredis.Client)) {
	t.Helper()
	for _, addr := range d.nodes {
		c := goredis.NewClient(&goredis.Options{Addr: addr})
		f(c)
		c.Close()
	}
}

// TestConformance runs the store suite on one real redis-server and on a
// three-node Redis Cluster, each subtest under a prefix of its own, as
// several deployments sharing a Redis would be.
func TestConformance(t *testing.T) {
	for _, d := range deployments(t) {
		t.Run(d.name, func(t *testing.T) {
			dep := d.start(t)
			var n atomic.Int64
			storetest.Run(t, func(t *testing.T, committed store.Committed) store.Store {
				s, err := redis.Open(t.Context(), dep.url, redis.Options{
					Prefix:    fmt.Sprintf("t%d:", n.Add(1)),
					Committed: committed,
				})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				return s
			})
		})
	}
}

func open(t *testing.T, url, prefix string) *redis.Store {
	t.Helper()
	s, err := redis.Open(t.Context(), url, redis.Options{Prefix: prefix})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestFollow checks that a store is told of what the other stores on the
// same Redis and prefix publish and announce to the rooms it watches, not of
// its own, nor of other rooms, nor of those of another prefix, nor once it
// stopped watching; and that a lost connection is reported once it is back.
func TestFollow(t *testing.T) {
	for _, d := range deployments(t) {
		t.Run(d.name, func(t *testing.T) { testFollow(t, d.start(t)) })
	}
}

func testFollow(t *testing.T, d deployment) {
	ctx := t.Context()
	a, b, other := open(t, d.url, "p:"), open(t, d.url, "p:"), open(t, d.url, "q:")
	key, unwatched := store.RoomKey{Namespace: "/", Name: "lobby"}, store.RoomKey{Namespace: "/", Name: "elsewhere"}
	t0 := time.Date(2031, time.March, 4, 5, 6, 7, 123456789, time.UTC)
	for _, c := range []struct {
		s *redis.Store
		k store.RoomKey
	}{{a, key}, {a, unwatched}, {other, key}} {
		if _, err := c.s.CreateRoom(ctx, c.k, store.RoomOptions{}, t0); err != nil {
			t.Fatal(err)
		}
	}

	msgs, events, lost := make(chan store.Message, 10), make(chan string, 10), make(chan struct{}, 10)
	fl, err := a.Follow(ctx, redis.Follower{
		Message: func(m store.Message) { msgs <- m },
		Event:   func(room store.RoomKey, e []byte) { events <- room.Name + ": " + string(e) },
		Lost:    func() { lost <- struct{}{} },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Stop()
	release, err := fl.Watch(ctx, []store.RoomKey{key})
	if err != nil {
		t.Fatal(err)
	}

	publish := func(s *redis.Store, k store.RoomKey, payload string) store.Message {
		t.Helper()
		m, _, err := s.Publish(ctx, store.PublishParams{Room: k, Payload: payload, ClientMessageID: "c-" + payload, Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	timeout := time.After(10 * time.Second)
	next := func(want store.Message) {
		t.Helper()
		select {
		case got := <-msgs:
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("message mismatch (-want +got):\n%s", d)
			}
		case <-timeout:
			t.Fatalf("no message %q", want.Payload)
		}
	}
	publish(a, key, "own")
	publish(other, key, "other prefix")
	publish(b, unwatched, "unwatched room")
	next(publish(b, key, "from b\x00with a NUL"))
	for _, c := range []struct {
		s *redis.Store
		k store.RoomKey
	}{{a, key}, {b, unwatched}, {b, key}} {
		if err := c.s.Announce(ctx, c.k, []byte("event")); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case got := <-events:
		if got != "lobby: event" {
			t.Errorf("event %q, want %q", got, "lobby: event")
		}
	case <-timeout:
		t.Fatal("no event from b")
	}

	// Redis drops the subscriber's connection; the client subscribes again.
	d.each(t, func(c *goredis.Client) {
		if err := c.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
			t.Fatal(err)
		}
	})
	select {
	case <-lost:
	case <-timeout:
		t.Fatal("Lost not called after the connection was killed")
	}
	next(publish(b, key, "after the loss"))

	// Watched again while still watched, then released twice: watched
	// until the last release.
	again, err := fl.Watch(ctx, []store.RoomKey{key})
	if err != nil {
		t.Fatal(err)
	}
	release()
	next(publish(b, key, "still watched"))
	again()
	// Unsubscribing is not waited for: once Redis counts no subscriber,
	// nothing more arrives.
	for n := int64(1); n > 0; {
		n = 0
		d.each(t, func(c *goredis.Client) {
			res, err := c.PubSubShardNumSub(ctx, "p:ch{/\x00lobby}").Result()
			if err != nil {
				t.Fatal(err)
			}
			n += res["p:ch{/\x00lobby}"]
		})
		if n > 0 {
			select {
			case <-timeout:
				t.Fatal("the room is still subscribed to after its last release")
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	publish(b, key, "no longer watched")
	if _, err := fl.Watch(ctx, []store.RoomKey{unwatched}); err != nil {
		t.Fatal(err)
	}
	next(publish(b, unwatched, "now watched"))
	if len(msgs)+len(events) != 0 {
		t.Errorf("unexpected deliveries: %d messages, %d events", len(msgs), len(events))
	}
}

// dropProxy forwards connections to a Redis server; once armed, it runs the
// next script it forwards and then cuts the connection before the answer, as
// a crash or a network failure can. Proxies may share their arming.
type dropProxy struct {
	addr  string
	armed *atomic.Bool
}

func startDropProxy(t *testing.T, redisAddr string, armed *atomic.Bool) *dropProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	p := &dropProxy{addr: lis.Addr().String(), armed: armed}
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", redisAddr)
			if err != nil {
				c.Close()
				continue
			}
			var cut atomic.Bool
			go func() {
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if err != nil {
						s.Close()
						return
					}
					if bytes.Contains(bytes.ToUpper(buf[:n]), []byte("EVAL")) && p.armed.CompareAndSwap(true, false) {
						cut.Store(true)
					}
					if _, err := s.Write(buf[:n]); err != nil {
						c.Close()
						return
					}
				}
			}()
			go func() {
				buf := make([]byte, 64<<10)
				for {
					n, err := s.Read(buf)
					if err != nil || cut.Load() {
						c.Close()
						s.Close()
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						s.Close()
						return
					}
				}
			}()
		}
	}()
	return p
}

// TestLostAnswerIsNotRetried checks that a publish whose answer was lost is
// not run again: without a client message id nothing could tell the second
// run from a new message, and it would be stored twice. On a Cluster, each
// node announces the address of its proxy, so that the client reaches every
// node through one.
func TestLostAnswerIsNotRetried(t *testing.T) {
	for _, tt := range []struct {
		name  string
		start func(t *testing.T, armed *atomic.Bool) string
	}{
		{"server", func(t *testing.T, armed *atomic.Bool) string {
			return "redis://" + startDropProxy(t, redistest.Start(t), armed).addr
		}},
		{"cluster", func(t *testing.T, armed *atomic.Bool) string {
			cl := redistest.StartCluster(t)
			var proxies []string
			for _, n := range cl.Nodes {
				p := startDropProxy(t, n.Addr, armed)
				_, port, _ := net.SplitHostPort(p.addr)
				if reply, err := redistest.Do(n.Addr, "CONFIG SET cluster-announce-port "+port); err != nil || reply != "+OK\r\n" {
					t.Fatalf("CONFIG SET cluster-announce-port: %q, %v", reply, err)
				}
				proxies = append(proxies, p.addr)
			}
			deadline := time.Now().Add(10 * time.Second)
			for _, n := range cl.Nodes {
				for {
					nodes, err := redistest.Do(n.Addr, "CLUSTER NODES")
					if err == nil && !slices.ContainsFunc(proxies, func(p string) bool { return !strings.Contains(nodes, " "+p+"@") }) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s does not know every proxy: %v\n%s", n.Addr, err, nodes)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			return "redis://" + proxies[0]
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var armed atomic.Bool
			testLostAnswer(t, tt.start(t, &armed), &armed)
		})
	}
}

func testLostAnswer(t *testing.T, url string, armed *atomic.Bool) {
	ctx := t.Context()
	s, err := redis.Open(ctx, url, redis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key := store.RoomKey{Namespace: "/", Name: "r"}
	if _, err := s.CreateRoom(ctx, key, store.RoomOptions{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Publish(ctx, store.PublishParams{Room: key, Payload: "first", Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	_, _, err = s.Publish(ctx, store.PublishParams{Room: key, Payload: "second", Now: time.Now()})
	t.Logf("publish whose answer was cut: %v", err)
	if armed.Load() {
		t.Fatal("the publish did not go through a proxy")
	}
	payloads := storetest.Payloads(storetest.All(t, s, key))
	if want := []string{"first", "second"}; !slices.Equal(payloads, want) {
		t.Errorf("stored %q, want %q", payloads, want)
	}
}

// TestOpenKeepsThePasswordOutOfErrors checks that a URL that does not
// parse, or names no server that answers, is reported without its password.
func TestOpenKeepsThePasswordOutOfErrors(t *testing.T) {
	for _, url := range []string{
		"redis://user:s3cret@127.0.0.1:1/0",
		"redis://user:s3cret@127.0.0.1:bad port/0",
		"redis://user:s3cret@[::1/0",
	} {
		_, err := redis.Open(t.Context(), url, redis.Options{})
		if err == nil {
			t.Errorf("Open(%q) succeeded", url)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) error shows the password: %v", url, err)
		}
	}
}

// TestUnreachableRedisIsUnavailable checks that calls made while Redis is
// down fail with store.ErrUnavailable, which callers may retry, and work
// again once it is back.
func TestUnreachableRedisIsUnavailable(t *testing.T) {
	ctx := t.Context()
	rd := redistest.StartDurable(t)
	s := open(t, "redis://"+rd.Addr, "p:")
	key := store.RoomKey{Namespace: "/", Name: "r"}
	if _, err := s.CreateRoom(ctx, key, store.RoomOptions{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	rd.Kill()
	calls := map[string]func() error{
		"Publish": func() error {
			_, _, err := s.Publish(ctx, store.PublishParams{Room: key, Payload: "x", Now: time.Now()})
			return err
		},
		"GetRoom":   func() error { _, err := s.GetRoom(ctx, key); return err },
		"ListRooms": func() error { _, err := s.ListRooms(ctx, store.ListRoomsQuery{Limit: 10}); return err },
		"Stats":     func() error { _, err := s.Stats(ctx, ""); return err },
		"SaveSessions": func() error {
			return s.SaveSessions(ctx, []store.Session{{Namespace: "/", ID: "a", Data: []byte("d"), Expire: time.Now().Add(time.Hour)}})
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with Redis down: %v, want ErrUnavailable", name, err)
		}
	}
	rd.Restart()
	if _, err := s.GetRoom(ctx, key); err != nil {
		t.Errorf("GetRoom once Redis is back: %v", err)
	}
}

// TestSentinelFailover runs the store through a Sentinel: when the primary
// is killed, calls fail with ErrUnavailable until the replica is promoted,
// then work on it with what was replicated, and a follower is told of the
// loss and gets what is published afterwards.
func TestSentinelFailover(t *testing.T) {
	ctx := t.Context()
	sen := redistest.StartSentinel(t)
	openVia := func() *redis.Store {
		s, err := redis.Open(ctx, sen.URL(), redis.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := openVia(), openVia()
	key := store.RoomKey{Namespace: "/", Name: "r"}
	if _, err := a.CreateRoom(ctx, key, store.RoomOptions{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Publish(ctx, store.PublishParams{Room: key, Payload: "before", Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	msgs, lost := make(chan store.Message, 10), make(chan struct{}, 10)
	fl, err := a.Follow(ctx, redis.Follower{Message: func(m store.Message) { msgs <- m }, Lost: func() { lost <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Stop()
	if _, err := fl.Watch(ctx, []store.RoomKey{key}); err != nil {
		t.Fatal(err)
	}
	// Replication is asynchronous: the primary dies once the replica has
	// everything.
	offset := func(addr, field string) string {
		t.Helper()
		info, err := redistest.Do(addr, "INFO replication")
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, field+":"); ok {
				return v
			}
		}
		return ""
	}
	deadline := time.Now().Add(10 * time.Second)
	for offset(sen.Primary.Addr, "master_repl_offset") != offset(sen.Replica.Addr, "slave_repl_offset") {
		if time.Now().After(deadline) {
			t.Fatal("the replica did not catch up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	sen.Primary.Kill()

	deadline = time.Now().Add(30 * time.Second)
	for {
		_, _, err := b.Publish(ctx, store.PublishParams{Room: key, Payload: "after", Now: time.Now()})
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("publish during the failover: %v, want ErrUnavailable", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after 30 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	payloads := storetest.Payloads(storetest.All(t, a, key))
	if want := []string{"before", "after"}; !slices.Equal(payloads, want) {
		t.Errorf("history after the failover: %q, want %q", payloads, want)
	}
	timeout := time.After(30 * time.Second)
	select {
	case <-lost:
	case <-timeout:
		t.Fatal("the follower was not told of the loss")
	}
	// The follower subscribes again on its own once the new primary is
	// known: until it has, what is published is not seen live.
	for {
		m, _, err := b.Publish(ctx, store.PublishParams{Room: key, Payload: "followed", Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		quiet := time.After(time.Second)
	read:
		for {
			select {
			case got := <-msgs:
				if got.Offset >= m.Offset {
					return
				}
			case <-quiet:
				break read
			case <-timeout:
				t.Fatal("the follower got nothing published after the failover")
			}
		}
	}
}

// TestSweepReadsOnlyRoomsWithDedupeKeys checks the index Sweep reads: a
// room is in it once a publish with a client message id left a key, and
// leaves it once Sweep forgot its last key, or with the room, but not while
// an addition of the room is recent, which may belong to a change still on
// its way.
func TestSweepReadsOnlyRoomsWithDedupeKeys(t *testing.T) {
	ctx := t.Context()
	addr := redistest.Start(t)
	s := open(t, "redis://"+addr, "p:")
	raw := goredis.NewClient(&goredis.Options{Addr: addr})
	defer raw.Close()
	members := func() []string {
		t.Helper()
		m, err := raw.SMembers(ctx, "p:{g}deduped").Result()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(m)
		return m
	}
	t0 := time.Now()
	for _, name := range []string{"quiet", "keyed", "deleted"} {
		k := store.RoomKey{Namespace: "/", Name: name}
		if _, err := s.CreateRoom(ctx, k, store.RoomOptions{}, t0); err != nil {
			t.Fatal(err)
		}
		cid := "c1"
		if name == "quiet" {
			cid = ""
		}
		if _, _, err := s.Publish(ctx, store.PublishParams{Room: k, Payload: "x", ClientMessageID: cid, Now: t0}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"/\x00deleted", "/\x00keyed"}
	if got := members(); !slices.Equal(got, want) {
		t.Fatalf("rooms with keys: %q, want %q", got, want)
	}
	if err := s.DeleteRoom(ctx, store.RoomKey{Namespace: "/", Name: "deleted"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Sweep(ctx, t0, t0); err != nil {
		t.Fatal(err)
	}
	if got := members(); !slices.Equal(got, want) {
		t.Errorf("within the grace of its addition, the deleted room: %q, want %q", got, want)
	}

	s.SetIndexGrace(0)
	if err := s.Sweep(ctx, t0, t0); err != nil { // keys accepted at t0 are kept
		t.Fatal(err)
	}
	if got, want := members(), []string{"/\x00keyed"}; !slices.Equal(got, want) {
		t.Errorf("after a sweep that kept the key: %q, want %q", got, want)
	}
	if err := s.Sweep(ctx, t0, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := members(); len(got) != 0 {
		t.Errorf("after the last key was forgotten: %q, want none", got)
	}
}

// TestClaim checks that replicas sharing a prefix take turns at a job: one
// claim a period, free again before the next.
func TestClaim(t *testing.T) {
	ctx := t.Context()
	addr := redistest.Start(t)
	a, b, other := open(t, "redis://"+addr, "p:"), open(t, "redis://"+addr, "p:"), open(t, "redis://"+addr, "q:")
	const every = 300 * time.Millisecond
	if !a.Claim(ctx, "sweep", every) {
		t.Fatal("the first claim was refused")
	}
	if b.Claim(ctx, "sweep", every) || a.Claim(ctx, "sweep", every) {
		t.Error("a claimed job was claimed again within its period")
	}
	if !b.Claim(ctx, "leases", every) || !other.Claim(ctx, "sweep", every) {
		t.Error("another job, or the same job under another prefix, was refused")
	}
	deadline := time.Now().Add(every)
	for !b.Claim(ctx, "sweep", every) {
		if time.Now().After(deadline) {
			t.Fatal("the claim had not lapsed by the end of its period")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// watch follows room with a new Following of s, stopped at the end of the
// test, and returns what it is told of the room's messages and of losses.
func watch(t *testing.T, s *redis.Store, room store.RoomKey) (<-chan store.Message, <-chan struct{}) {
	t.Helper()
	msgs, lost := make(chan store.Message, 10), make(chan struct{}, 10)
	fl, err := s.Follow(t.Context(), redis.Follower{
		Message: func(m store.Message) { msgs <- m },
		Lost:    func() { lost <- struct{}{} },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fl.Stop)
	if _, err := fl.Watch(t.Context(), []store.RoomKey{room}); err != nil {
		t.Fatal(err)
	}
	return msgs, lost
}

// TestFollowAcrossASlotMove moves the slot of a watched room to another
// Cluster node, as resharding does, and checks that the follower reports
// the loss and follows the room on its new node.
func TestFollowAcrossASlotMove(t *testing.T) {
	cl := redistest.StartCluster(t)
	d := deployment{url: cl.URL(), nodes: cl.Addrs()}
	ctx := t.Context()
	a, b := open(t, d.url, "p:"), open(t, d.url, "p:")
	key := store.RoomKey{Namespace: "/", Name: "lobby"}
	if _, err := a.CreateRoom(ctx, key, store.RoomOptions{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	msgs, lost := watch(t, a, key)
	timeout := time.After(10 * time.Second)
	publish := func(payload string) {
		t.Helper()
		if _, _, err := b.Publish(ctx, store.PublishParams{Room: key, Payload: payload, Now: time.Now()}); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-msgs:
			if m.Payload != payload {
				t.Fatalf("got %q, want %q", m.Payload, payload)
			}
		case <-timeout:
			t.Fatalf("no message %q", payload)
		}
	}
	publish("before the move")

	ch := "p:ch{/\x00lobby}"
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: d.nodes})
	defer c.Close()
	slot, err := c.ClusterKeySlot(ctx, ch).Result()
	if err != nil {
		t.Fatal(err)
	}
	src, err := c.MasterForKey(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	var dst *goredis.Client
	for _, addr := range d.nodes {
		if addr != src.Options().Addr {
			dst = goredis.NewClient(&goredis.Options{Addr: addr})
			defer dst.Close()
			break
		}
	}
	id := func(c *goredis.Client) string {
		t.Helper()
		id, err := c.Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	srcID, dstID := id(src), id(dst)
	host, port, _ := net.SplitHostPort(dst.Options().Addr)
	steps := [][]any{
		{dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID},
		{src, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID},
	}
	for _, s := range steps {
		if err := s[0].(*goredis.Client).Do(ctx, s[1:]...).Err(); err != nil {
			t.Fatalf("%v: %v", s[1:], err)
		}
	}
	keys, err := src.ClusterGetKeysInSlot(ctx, int(slot), 1000).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		args := []any{"MIGRATE", host, port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := src.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("MIGRATE: %v", err)
		}
	}
	for _, addr := range d.nodes {
		n := goredis.NewClient(&goredis.Options{Addr: addr})
		err := n.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err()
		n.Close()
		if err != nil {
			t.Fatalf("SETSLOT NODE on %s: %v", addr, err)
		}
	}
	select {
	case <-lost:
	case <-timeout:
		t.Fatal("Lost not called after the room's slot moved")
	}
	publish("after the move")
}

// TestClusterFailover kills, with SIGKILL, the Cluster primary that holds a
// watched room: once its replica has taken over, publishes to the room work
// again, the follower has reported the loss, and it follows the room on the
// new primary.
func TestClusterFailover(t *testing.T) {
	ctx := t.Context()
	cl := redistest.StartCluster(t)
	a, b := open(t, cl.URL(), "p:"), open(t, cl.URL(), "p:")
	key := store.RoomKey{Namespace: "/", Name: "lobby"}
	if _, err := a.CreateRoom(ctx, key, store.RoomOptions{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: cl.Addrs()})
	defer c.Close()
	primary := cl.NodeFor(t, "p:room{/\x00lobby}")
	cl.AddReplica(t, primary)

	msgs, lost := watch(t, a, key)
	timeout := time.After(20 * time.Second)
	received := func(payload string) {
		t.Helper()
		select {
		case m := <-msgs:
			if m.Payload != payload {
				t.Fatalf("got %q, want %q", m.Payload, payload)
			}
		case <-timeout:
			t.Fatalf("no message %q", payload)
		}
	}
	first, _, err := b.Publish(ctx, store.PublishParams{Room: key, Payload: "before", ClientMessageID: "c1", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	received("before")
	// The replica must have the message before its primary dies: replication
	// is asynchronous.
	if err := c.Wait(ctx, 1, time.Second).Err(); err != nil {
		t.Fatal(err)
	}

	primary.Kill()
	var failures int
	for {
		_, _, err := b.Publish(ctx, store.PublishParams{Room: key, Payload: "after", ClientMessageID: "c2", Now: time.Now()})
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("publish during the failover: %v, want ErrUnavailable", err)
		}
		failures++
		select {
		case <-timeout:
			t.Fatalf("publishes still fail %d tries after the primary died: %v", failures, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	select {
	case <-lost:
	case <-timeout:
		t.Fatal("Lost not called after the primary died")
	}
	// What was published before the follower was back may have been missed,
	// as Lost says; what is published after is not.
	if _, _, err := b.Publish(ctx, store.PublishParams{Room: key, Payload: "once followed again", Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		if m.Payload == "after" {
			received("once followed again")
		} else if m.Payload != "once followed again" {
			t.Fatalf("got %q after the failover", m.Payload)
		}
	case <-timeout:
		t.Fatal("nothing received once followed again")
	}
	offsets := storetest.Offsets(storetest.All(t, a, key))
	if want := []uint64{first.Offset, first.Offset + 1, first.Offset + 2}; !slices.Equal(offsets, want) {
		t.Errorf("history after the failover: offsets %v, want %v", offsets, want)
	}
	t.Logf("%d publishes failed during the failover", failures)
}

// TestWatchAfterAFailedWatch checks that a Watch that failed, Redis being
// down, leaves nothing behind that the next Watch of the room would wait
// for once Redis is back.
func TestWatchAfterAFailedWatch(t *testing.T) {
	ctx := t.Context()
	rd := redistest.StartDurable(t)
	s := open(t, "redis://"+rd.Addr, "p:")
	fl, err := s.Follow(ctx, redis.Follower{})
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Stop()
	key := store.RoomKey{Namespace: "/", Name: "lobby"}
	rd.Kill()
	if _, err := fl.Watch(ctx, []store.RoomKey{key}); err == nil {
		t.Fatal("Watch with Redis down succeeded")
	}
	rd.Restart()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := fl.Watch(wctx, []store.RoomKey{key}); err != nil {
		t.Fatalf("Watch once Redis is back: %v", err)
	}
}

// TestClusterDownIsUnavailable stops a Cluster primary for longer than the
// node timeout: the other primaries then refuse every command (CLUSTERDOWN)
// until it is back, which callers must see as ErrUnavailable, a refusal to
// retry, not as a failure of the request.
func TestClusterDownIsUnavailable(t *testing.T) {
	ctx := t.Context()
	cl := redistest.StartDurableCluster(t)
	s := open(t, cl.URL(), "p:")
	key := store.RoomKey{Namespace: "/", Name: "lobby"}
	if _, err := s.CreateRoom(ctx, key, store.RoomOptions{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	holder := cl.NodeFor(t, "p:room{/\x00lobby}")
	var other *redistest.Server
	for _, n := range cl.Nodes {
		if n != holder && n != cl.NodeFor(t, "p:{g}rooms") {
			other = n
		}
	}
	if other == nil {
		t.Fatal("no third node") // two keys cannot rule out three nodes
	}
	other.Kill()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, _, err := s.Publish(ctx, store.PublishParams{Room: key, Payload: "x", Now: time.Now()})
		if err != nil {
			if !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("publish while the cluster is down: %v, want ErrUnavailable", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cluster never refused a publish after a primary stopped")
		}
		time.Sleep(100 * time.Millisecond)
	}
	other.Restart()
}
