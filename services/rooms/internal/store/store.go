// Package store defines what the rooms service needs from a storage backend:
// rooms, memberships with sessions, and per-room message logs with offsets.
// Backends live in subpackages (store/sqlite, later store/redis) and must pass
// the shared conformance suite in store/storetest.
//
// The contract is written for a networked store as much as an embedded one:
// every method is one round trip that is atomic on its own, and nothing relies
// on transactions spanning calls. The one callback, Committed, tells the
// service about stored messages in offset order, which only the backend knows
// once publishes run concurrently.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors a backend returns, possibly wrapped; callers test them with errors.Is.
var (
	// ErrNotFound: the room (or, for EndSession, the membership) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: CreateRoom for a name that is taken.
	ErrAlreadyExists = errors.New("already exists")
	// ErrRoomFull: a join would exceed the room's MaxMembers.
	ErrRoomFull = errors.New("room is full")
	// ErrPrivate: a user who is not a member tried to join a private room.
	ErrPrivate = errors.New("room is private")
	// ErrNotMember: a publish named a sender who is not a member.
	ErrNotMember = errors.New("sender is not a member")
	// ErrReadOnly: a publish named a sender in a read-only room.
	ErrReadOnly = errors.New("room is read-only")
	// ErrUnavailable: a networked backend could not be reached, or is not
	// ready (Redis loading its data). The call may be retried; a write
	// may or may not have been applied.
	ErrUnavailable = errors.New("store unavailable")
)

// RoomKey identifies a room: a name within a namespace.
type RoomKey struct {
	Namespace string
	Name      string
}

// RoomOptions are a room's settings, always stored with concrete values: the
// service fills in its defaults before calling the store.
type RoomOptions struct {
	Private            bool
	MaxMembers         uint32 // 0: no limit
	ReadOnly           bool
	HistoryMaxMessages uint32        // keep at most this many newest messages; 0: no count limit
	HistoryRetention   time.Duration // drop messages older than this in Sweep; 0: no age limit
	DeleteWhenEmpty    time.Duration // DeleteEmptyRooms removes the room this long after its last member left; 0: never
}

// RoomOptionsPatch changes the options whose fields are non-nil.
type RoomOptionsPatch struct {
	Private            *bool
	MaxMembers         *uint32
	ReadOnly           *bool
	HistoryMaxMessages *uint32
	HistoryRetention   *time.Duration
	DeleteWhenEmpty    *time.Duration
}

// Room is a stored room.
type Room struct {
	RoomKey
	Options     RoomOptions
	LastOffset  uint64 // offset of the newest message ever published; 0 if none
	MemberCount uint32
	CreateTime  time.Time
	UpdateTime  time.Time
	// Epoch identifies this incarnation of the room: the backend gives every
	// created room a new one, so a room deleted and created again (offsets
	// starting again at 1) is never mistaken for the old one.
	Epoch string
}

// Member is a user's membership of a room.
type Member struct {
	UserID   string
	JoinTime time.Time
	Sessions uint32 // live sessions; the member is online when > 0
}

// Message is a stored message.
type Message struct {
	Room            RoomKey
	Offset          uint64
	Sender          string
	Payload         string
	ClientMessageID string
	SessionID       string
	CreateTime      time.Time
}

// ListRoomsQuery selects a page of rooms ordered by (namespace, name).
type ListRoomsQuery struct {
	Namespace string  // "" for all namespaces
	Prefix    string  // name prefix, "" for all
	After     RoomKey // exclusive cursor: rooms strictly after this key; zero for the start
	Limit     int
}

// JoinParams describe a join.
type JoinParams struct {
	Room      RoomKey
	UserID    string
	SessionID string // "" to join without recording a session
	// Lease holds the session (see KeepLease); "" for one that lasts until it
	// is ended.
	Lease string
	// Ephemeral: a new membership ends with its last session's lease.
	Ephemeral bool
	// Admit bypasses the private-room check (AddMember); the member limit still holds.
	Admit bool
	Now   time.Time
}

// Membership names a user's membership of a room.
type Membership struct {
	Room   RoomKey
	UserID string
}

// JoinResult is the outcome of a successful join.
type JoinResult struct {
	Room   Room
	Member Member
	Joined bool // the user was not a member before
}

// Session is a gateway's record of a client session, kept for connection
// state recovery.
type Session struct {
	Namespace, ID string
	Data          []byte
	Expire        time.Time
}

// PublishParams describe a publish.
type PublishParams struct {
	Room            RoomKey
	Sender          string // "" for a system message: no membership or read-only check
	Payload         string
	ClientMessageID string
	SessionID       string
	Now             time.Time
	// DedupeSince: a message of the same room with the same Sender and
	// ClientMessageID accepted at or after this time is returned instead of
	// storing a new one. Keys are per sender so that two users' clients cannot
	// collide; an empty ClientMessageID is never deduplicated.
	DedupeSince time.Time
}

// HistoryMode says which part of a room's history a HistoryQuery reads.
type HistoryMode int

const (
	// HistoryLatest reads the newest Limit messages.
	HistoryLatest HistoryMode = iota
	// HistoryBefore reads the newest Limit messages with offsets below Offset.
	HistoryBefore
	// HistoryAfter reads the oldest Limit messages with offsets above Offset
	// (Offset 0: from the oldest message kept).
	HistoryAfter
)

// HistoryQuery selects messages of one room.
type HistoryQuery struct {
	Room   RoomKey
	Mode   HistoryMode
	Offset uint64
	Limit  int
}

// Committed receives the messages that Publish stores, so that the service
// can broadcast them to live subscribers. A backend is given one when it is
// opened (nil: nobody is told) and must call it:
//   - with every message Publish stores, once, and never with a duplicate
//     answered from the deduplication window or a refused publish;
//   - once the message is durable and before the Publish that stored it
//     returns, so that a caller that has its answer can rely on live
//     subscribers having been handed the message;
//   - in offset order per room: calls carrying messages of the same room never
//     overlap, and carry them in ascending offset order, so that a subscriber
//     that receives them in the order of the calls sees no gap.
//
// One call may carry several messages, of one room or of several. The hook
// must return quickly without blocking, as it runs on the backend's write
// path, and must not keep msgs after it returns.
type Committed func(msgs []Message)

// Stats are counts over the whole store or one namespace.
type Stats struct {
	Rooms, Members, Sessions, Messages uint64
}

// Store is a storage backend. Implementations are safe for concurrent use.
type Store interface {
	// CreateRoom stores a new room with LastOffset 0. ErrAlreadyExists if taken.
	CreateRoom(ctx context.Context, key RoomKey, opts RoomOptions, now time.Time) (Room, error)
	// GetRoom returns a room or ErrNotFound.
	GetRoom(ctx context.Context, key RoomKey) (Room, error)
	// ListRooms returns up to q.Limit rooms after q.After in key order.
	ListRooms(ctx context.Context, q ListRoomsQuery) ([]Room, error)
	// UpdateRoom applies a patch and sets UpdateTime. ErrNotFound if missing.
	UpdateRoom(ctx context.Context, key RoomKey, patch RoomOptionsPatch, now time.Time) (Room, error)
	// DeleteRoom removes a room with its members, sessions and messages.
	// ErrNotFound if missing. A room later created with the same key starts
	// again at offset 1.
	DeleteRoom(ctx context.Context, key RoomKey) error

	// Join makes p.UserID a member (if not already) and records p.SessionID.
	// ErrNotFound, ErrPrivate (private room, user not a member, not p.Admit) or
	// ErrRoomFull (new member beyond MaxMembers). Joining again is not an error.
	Join(ctx context.Context, p JoinParams) (JoinResult, error)
	// RemoveMember ends a membership and its sessions. It reports whether the
	// user was a member. ErrNotFound if the room is missing.
	RemoveMember(ctx context.Context, key RoomKey, userID string) (bool, error)
	// EndSession removes one session of a member and returns the member after
	// it. Ending an unknown session is not an error. ErrNotFound if the room is
	// missing or the user is not a member.
	EndSession(ctx context.Context, key RoomKey, userID, sessionID string) (Member, error)
	// ListMembers returns up to limit members with user id > afterUser, in user
	// id order. ErrNotFound if the room is missing.
	ListMembers(ctx context.Context, key RoomKey, afterUser string, limit int) ([]Member, error)

	// Publish assigns the room's next offset (LastOffset+1) and stores the
	// message atomically, trimming history beyond HistoryMaxMessages. For a
	// duplicate ClientMessageID within the window it stores nothing and returns
	// the first message (with its offset and time) and true. Once Publish
	// returns, the message survives a crash of the process, and a new one has
	// been passed to the backend's Committed hook.
	// ErrNotFound, ErrNotMember, ErrReadOnly.
	Publish(ctx context.Context, p PublishParams) (Message, bool, error)
	// History returns the selected messages in ascending offset order.
	// ErrNotFound if the room is missing.
	History(ctx context.Context, q HistoryQuery) ([]Message, error)
	// Purge deletes messages with Offset < before, or all when before is 0, and
	// returns how many. LastOffset is unchanged. ErrNotFound if missing.
	Purge(ctx context.Context, key RoomKey, before uint64) (uint64, error)
	// Sweep deletes messages older than their room's HistoryRetention at now and
	// saved sessions expired at now, and forgets deduplication keys accepted
	// before dedupeBefore.
	Sweep(ctx context.Context, now, dedupeBefore time.Time) error
	// DeleteEmptyRooms deletes the rooms with a DeleteWhenEmpty that have
	// been seen without members, by earlier calls, for at least that long at
	// now, and returns them. A room seen empty for the first time is only
	// noted; a member joining or leaving clears the note.
	DeleteEmptyRooms(ctx context.Context, now time.Time) ([]RoomKey, error)
	// KeepLease creates lease or moves its expiry to expire. It reports
	// whether it created it: the lease was never kept, or was forgotten by
	// ExpireLeases, which ended its sessions.
	KeepLease(ctx context.Context, lease string, expire time.Time) (created bool, err error)
	// ExpireLeases ends the sessions held under leases not kept past now
	// (or never kept), forgets those leases, and ends the ephemeral
	// memberships left without a session. It returns those memberships,
	// with an error too those it ended before the error.
	ExpireLeases(ctx context.Context, now time.Time) ([]Membership, error)
	// Stats counts rooms, memberships, sessions and messages ("" namespace: all).
	Stats(ctx context.Context, namespace string) (Stats, error)

	// SaveSessions stores each session's data under (namespace, id) until
	// its expiry, replacing what was there, all in one write; a session
	// listed twice keeps its last record.
	SaveSessions(ctx context.Context, sessions []Session) error
	// TakeSession returns and deletes what SaveSessions stored, atomically, so
	// two callers never both get it. ErrNotFound if there is none or it
	// expired at now.
	TakeSession(ctx context.Context, namespace, id string, now time.Time) ([]byte, error)

	// Close releases the store's resources.
	Close() error
}
