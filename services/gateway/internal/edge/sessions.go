package edge

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/kit/loop"
)

// A socket's session (user, rooms, the offset each join reached) is stored in
// the rooms service from the moment the socket is admitted, and again on every
// join and leave, under a random key that every message the socket receives
// carries in its recovery position (wire.EncodePosition). The record lives for
// the recovery window and Maintain renews it while the socket is
// connected, so a client whose gateway dies — even by SIGKILL, with nothing
// saved on the way out — finds its session on whichever gateway it reaches
// next. A socket that ends for good drops its record.

// savedSession is the record kept in the rooms service.
type savedSession struct {
	SID   string                `json:"sid"`
	User  string                `json:"user"`
	Rooms map[string]savedPlace `json:"rooms"`
}

// savedPlace is where a socket stood in one room: an offset means nothing
// without the epoch it belongs to.
type savedPlace struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// newSessionKey returns a key no client can guess: it is as good as the
// session to whoever holds it (who must still present the user's token).
func newSessionKey() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (c *client) sessionRecord() ([]byte, error) {
	c.mu.Lock()
	rec := savedSession{SID: c.id, User: c.user, Rooms: make(map[string]savedPlace, len(c.rooms))}
	for r, j := range c.rooms {
		rec.Rooms[r] = savedPlace{Offset: j.offset, Epoch: j.epoch}
	}
	c.mu.Unlock()
	return json.Marshal(rec)
}

// save stores the socket's session for the recovery window and waits until
// it is stored. A failure is logged, not returned: the socket works on, it
// only could not be restored.
func (c *client) save(ctx context.Context) {
	data, err := c.sessionRecord()
	if err == nil {
		select {
		case err = <-c.g.saver.save(c.saveRequest(data), true):
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err != nil {
		c.g.cfg.Log.Error("saving session for recovery failed", "namespace", c.ns.Name, "socket", c.id, "err", err)
		return
	}
	c.g.cfg.Log.Debug("session saved for recovery", "namespace", c.ns.Name, "socket", c.id)
}

// saveInBackground saves the session from a path that must not wait for the
// rooms service (socket.io's close path); shutdown waits for it. The record
// is taken now: the disconnect that follows empties the socket's rooms.
func (c *client) saveInBackground() {
	data, err := c.sessionRecord()
	if err != nil {
		c.g.cfg.Log.Error("saving session for recovery failed", "namespace", c.ns.Name, "socket", c.id, "err", err)
		return
	}
	c.g.saver.save(c.saveRequest(data), false)
}

func (c *client) saveRequest(data []byte) *roomsv1.SaveSessionRequest {
	return &roomsv1.SaveSessionRequest{
		Namespace: c.ns.Name, SessionId: c.key, Data: data, Ttl: durationpb.New(c.g.cfg.RecoveryWindow),
	}
}

// drop removes the socket's stored session: it ended for good (the client
// left the namespace, or was sent away), so it must not be restored.
func (c *client) drop() {
	c.g.bg.Go(func() {
		ctx, cancel := c.callContext()
		defer cancel()
		c.g.saver.forget(ctx, c.ns.Name, c.key)
		if _, err := c.g.cfg.Rooms.TakeSession(ctx, &roomsv1.TakeSessionRequest{Namespace: c.ns.Name, SessionId: c.key}); err != nil {
			c.g.cfg.Log.Debug("no stored session to drop", "namespace", c.ns.Name, "socket", c.id, "err", err)
		}
	})
}

// track adds a connected socket to, or removes it from, the sessions
// Maintain renews.
func (g *Gateway) track(c *client, live bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if live {
		g.live[c] = struct{}{}
	} else {
		delete(g.live, c)
	}
}

// liveClients returns the connected sockets.
func (g *Gateway) liveClients() []*client {
	g.mu.Lock()
	defer g.mu.Unlock()
	clients := make([]*client, 0, len(g.live))
	for c := range g.live {
		clients = append(clients, c)
	}
	return clients
}

// keepLease keeps the sessions' lease, and reports whether it had lapsed
// since it was last kept: the rooms service has then ended every session
// this gateway held.
func (g *Gateway) keepLease(ctx context.Context) (lapsed bool, err error) {
	resp, err := g.cfg.Rooms.KeepLease(ctx, &roomsv1.KeepLeaseRequest{Lease: g.lease, Ttl: durationpb.New(g.cfg.LeaseTTL)})
	if err != nil {
		return false, err
	}
	held := g.leaseHeld.Swap(true)
	return held && resp.GetCreated(), nil
}

// reconnectAll closes the connection of every connected socket. It follows a
// lapsed lease: the rooms service has ended the sockets' sessions and guest
// memberships, so they would stay connected to rooms they are no longer in.
// Each client reconnects and recovers its session (rooms and missed
// messages) as after a network failure.
func (g *Gateway) reconnectAll() {
	clients := g.liveClients()
	g.cfg.Log.Warn("the sessions' lease lapsed and the rooms service ended them; closing every connection so that clients recover", "sockets", len(clients))
	for _, c := range clients {
		c.closeConn()
	}
}

// Maintain runs the gateway's periodic work until ctx ends: it keeps the
// sessions' lease three times per lease TTL, so they end on their own only if
// the gateway stops; it renews the stored session of every connected socket
// three times per recovery window, so each outlives its gateway by a full
// window, whenever the gateway dies; and it forgets room-creation allowances
// that are full again.
func (g *Gateway) Maintain(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() {
		loop.Every(ctx, g.cfg.LeaseTTL/3, func(ctx context.Context) {
			kctx, cancel := context.WithTimeout(ctx, g.cfg.Limits.CallTimeout)
			defer cancel()
			lapsed, err := g.keepLease(kctx)
			switch {
			case err != nil && ctx.Err() == nil:
				g.cfg.Log.Error("keeping the sessions' lease failed; they end if it lapses", "err", err)
			case lapsed:
				g.reconnectAll()
			}
		})
	})
	wg.Go(func() { loop.Every(ctx, g.cfg.RecoveryWindow/3, g.renewSessions) })
	wg.Go(func() { loop.Every(ctx, time.Minute, func(context.Context) { g.forgetCreators() }) })
	wg.Wait()
}

// renewSessions saves the session of every connected socket again, in
// batches.
func (g *Gateway) renewSessions(ctx context.Context) {
	for _, c := range g.liveClients() {
		if ctx.Err() != nil {
			return
		}
		c.saveInBackground()
	}
}
