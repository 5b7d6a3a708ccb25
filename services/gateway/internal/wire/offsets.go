package wire

import (
	"net/url"
	"slices"
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
	return string(appendOffsets(nil, placesOf(pos)))
}

// place is a socket's offset in one room, with the room's name escaped once
// for the many offset strings that will carry it.
type place struct {
	room, escaped string
	offset        uint64
}

func newPlace(room string, offset uint64) place {
	return place{room: room, escaped: url.QueryEscape(room), offset: offset}
}

// placesOf returns pos as places in room name order.
func placesOf(pos map[string]uint64) []place {
	places := make([]place, 0, len(pos))
	for r, off := range pos {
		places = append(places, newPlace(r, off))
	}
	slices.SortFunc(places, func(a, b place) int { return strings.Compare(a.room, b.room) })
	return places
}

// appendOffsets appends the offset string of places, which are in room name
// order, to b.
func appendOffsets(b []byte, places []place) []byte {
	for i, p := range places {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, p.escaped...)
		b = append(b, '=')
		b = strconv.AppendUint(b, p.offset, 10)
	}
	return b
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
	return string(appendPosition(nil, key, placesOf(pos)))
}

func appendPosition(b []byte, key string, places []place) []byte {
	b = append(b, key...)
	b = append(b, '|')
	return appendOffsets(b, places)
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
