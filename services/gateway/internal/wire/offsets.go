package wire

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// EncodeOffsets renders a socket's position in each of its rooms as the
// offset string socket.io connection state recovery carries: the client keeps
// the last one it received and hands it back when it reconnects. A socket's
// rooms each have their own offset sequence, so the string holds all of them,
// "room=offset&room=offset", rooms in name order, names query-escaped (which
// also keeps the string free of characters JSON would escape).
func EncodeOffsets(pos map[string]uint64) string {
	rooms := make([]string, 0, len(pos))
	for r := range pos {
		rooms = append(rooms, r)
	}
	sort.Strings(rooms)
	var b strings.Builder
	for i, r := range rooms {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(r))
		b.WriteByte('=')
		b.WriteString(strconv.FormatUint(pos[r], 10))
	}
	return b.String()
}

// DecodeOffsets parses what EncodeOffsets produced. A client may send
// anything: entries that do not parse are ignored.
func DecodeOffsets(s string) map[string]uint64 {
	pos := map[string]uint64{}
	for entry := range strings.SplitSeq(s, "&") {
		name, off, ok := strings.Cut(entry, "=")
		if !ok {
			continue
		}
		room, err := url.QueryUnescape(name)
		if err != nil || room == "" {
			continue
		}
		n, err := strconv.ParseUint(off, 10, 64)
		if err != nil {
			continue
		}
		pos[room] = n
	}
	return pos
}

// EncodePosition renders what a socket hands back when it reconnects: the key
// its session is stored under, then its offsets, as "key|room=offset&...".
// Room names are query-escaped, so the first "|" always ends the key.
func EncodePosition(key string, pos map[string]uint64) string {
	return key + "|" + EncodeOffsets(pos)
}

// DecodePosition parses what EncodePosition produced; a string without a key
// gives an empty one.
func DecodePosition(s string) (key string, pos map[string]uint64) {
	key, offsets, ok := strings.Cut(s, "|")
	if !ok {
		return "", DecodeOffsets(s)
	}
	return key, DecodeOffsets(offsets)
}
