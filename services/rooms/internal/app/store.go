package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/rooms/internal/fanout"
	"github.com/parleyhq/parley/services/rooms/internal/server"
	"github.com/parleyhq/parley/services/rooms/internal/store"
	"github.com/parleyhq/parley/services/rooms/internal/store/redis"
	"github.com/parleyhq/parley/services/rooms/internal/store/sqlite"
)

// openedStore is the store the service runs on, with what it needs besides.
type openedStore struct {
	store.Store
	// where names the store for the log, without secrets.
	where string
	// announce tells other replicas of the service's events, watch has the
	// hub fed theirs, and claim takes turns at periodic jobs with them; nil
	// on SQLite, which one process owns.
	announce func(*roomsv1.Event)
	watch    func(context.Context, []store.RoomKey) (func(), error)
	claim    func(context.Context, string, time.Duration) bool
	// close ends the store's feed of other replicas' events, then the store.
	close func() error
}

// openStore opens Redis when --redis-url is set, else the SQLite file in
// --data-dir. On Redis the hub is also fed what the other replicas publish
// to the rooms subscribed to here, so that a subscriber of any replica sees
// every message of its rooms.
func openStore(ctx context.Context, cfg Config, hub *fanout.Hub, log *slog.Logger) (*openedStore, error) {
	if cfg.RedisURL == "" {
		path := filepath.Join(cfg.DataDir, "rooms.db")
		st, err := sqlite.Open(ctx, path, sqlite.Options{
			Synchronous: strings.ToUpper(cfg.SQLiteSync),
			Committed:   server.BroadcastCommitted(hub),
			Log:         log,
		})
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return &openedStore{Store: st, where: "sqlite:" + path, close: st.Close}, nil
	}

	u, err := url.Parse(cfg.RedisURL)
	if err != nil {
		return nil, errors.New("--redis-url does not parse") // its error would quote the password
	}
	where := u.Redacted()
	redis.LogTo(log)
	broadcast := server.BroadcastCommitted(hub)
	st, err := redis.Open(ctx, cfg.RedisURL, redis.Options{Prefix: cfg.RedisPrefix, Committed: broadcast})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", where, err)
	}
	fl, err := st.Follow(ctx, redis.Follower{
		Message: func(m store.Message) { broadcast([]store.Message{m}) },
		Event: func(_ store.RoomKey, b []byte) {
			ev := new(roomsv1.Event)
			if err := proto.Unmarshal(b, ev); err != nil {
				log.Warn("dropped an event from another replica", "error", err)
				return
			}
			hub.Broadcast(ev)
		},
		Lost: func() {
			log.Warn("the feed of other replicas' events was interrupted: subscriptions resume from their offsets")
			hub.Interrupt()
		},
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("open store %s: %w", where, err)
	}
	announce := func(ev *roomsv1.Event) {
		b, err := proto.Marshal(ev)
		if err == nil {
			err = st.Announce(context.WithoutCancel(ctx), store.RoomKey{Namespace: ev.GetNamespace(), Name: ev.GetRoom()}, b)
		}
		if err != nil {
			log.Warn("could not tell other replicas of an event", "room", ev.GetRoom(), "error", err)
		}
	}
	return &openedStore{Store: st, where: where, announce: announce, watch: fl.Watch, claim: st.Claim, close: func() error {
		fl.Stop()
		return st.Close()
	}}, nil
}
