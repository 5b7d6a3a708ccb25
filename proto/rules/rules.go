// Package rules gives callers of the rooms service the limits its API
// enforces, read from the protovalidate annotations of the .proto files, so
// that a caller checking input early (the gateway, before it spends a call)
// can never drift from what the service accepts.
package rules

import (
	"fmt"
	"regexp"
	"unicode/utf8"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
)

// String is the rule of a string field: its length in characters and, when
// set, the pattern it must match.
type String struct {
	MinLen, MaxLen int
	Pattern        *regexp.Regexp
}

// Valid reports whether s satisfies the rule.
func (r String) Valid(s string) bool {
	n := utf8.RuneCountInString(s)
	if !utf8.ValidString(s) || n < r.MinLen || n > r.MaxLen {
		return false
	}
	return r.Pattern == nil || r.Pattern.MatchString(s)
}

// The rules, as the rooms service applies them.
var (
	// Room is a room name.
	Room = stringRule(&roomsv1.JoinRoomRequest{}, "room")
	// UserID is a user id (a member, a sender, a token's subject).
	UserID = stringRule(&roomsv1.JoinRoomRequest{}, "user_id")
	// ClientMessageID is a publisher's idempotency key.
	ClientMessageID = stringRule(&roomsv1.PublishRequest{}, "client_message_id")
	// MaxHistoryPage is the most messages one GetHistory call returns.
	MaxHistoryPage = int(uint32Max(&roomsv1.GetHistoryRequest{}, "limit"))
	// MaxListPage is the most rooms or members one list call returns.
	MaxListPage = int(uint32Max(&roomsv1.ListRoomsRequest{}, "page_size"))
)

func fieldRules(m proto.Message, field string) *validate.FieldRules {
	fd := m.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(field))
	if fd == nil {
		panic(fmt.Sprintf("rules: %s has no field %s", m.ProtoReflect().Descriptor().FullName(), field))
	}
	r, _ := proto.GetExtension(fd.Options(), validate.E_Field).(*validate.FieldRules)
	return r
}

// stringRule panics when the field has no length rule: the API is compiled in,
// so that is a programming error caught by the first test that runs.
func stringRule(m proto.Message, field string) String {
	sr := fieldRules(m, field).GetString()
	if sr == nil || !sr.HasMaxLen() {
		panic(fmt.Sprintf("rules: %s.%s has no string length rule", m.ProtoReflect().Descriptor().FullName(), field))
	}
	r := String{MinLen: int(sr.GetMinLen()), MaxLen: int(sr.GetMaxLen())}
	if sr.HasPattern() {
		r.Pattern = regexp.MustCompile(sr.GetPattern())
	}
	return r
}

func uint32Max(m proto.Message, field string) uint32 {
	ur := fieldRules(m, field).GetUint32()
	if ur == nil || !ur.HasLte() {
		panic(fmt.Sprintf("rules: %s.%s has no upper bound", m.ProtoReflect().Descriptor().FullName(), field))
	}
	return ur.GetLte()
}
