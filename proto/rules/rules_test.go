package rules

import (
	"strings"
	"testing"
)

func TestRoom(t *testing.T) {
	tests := []struct {
		name string
		room string
		want bool
	}{
		{"plain", "room1", true},
		{"unicode letters", "café-☕", true},
		{"longest", strings.Repeat("é", 128), true},
		{"empty", "", false},
		{"too long", strings.Repeat("a", 129), false},
		{"space", "a b", false},
		{"no-break space", "room\u00a0x", false},
		{"zero-width space", "room\u200bx", false},
		{"right-to-left override", "room\u202ex", false},
		{"control", "room\x01", false},
		{"not UTF-8", "room\xff", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Room.Valid(tt.room); got != tt.want {
				t.Errorf("Room.Valid(%q) = %v, want %v", tt.room, got, tt.want)
			}
		})
	}
}

func TestLimitsReadFromTheAPI(t *testing.T) {
	if UserID.MaxLen != 128 || UserID.MinLen != 1 || !UserID.Valid("alice smith") || UserID.Valid("a\x00") {
		t.Errorf("UserID = %+v", UserID)
	}
	if ClientMessageID.MaxLen != 128 || ClientMessageID.Pattern != nil {
		t.Errorf("ClientMessageID = %+v", ClientMessageID)
	}
	if MaxHistoryPage != 1000 || MaxListPage != 1000 {
		t.Errorf("MaxHistoryPage = %d, MaxListPage = %d, want the API's 1000", MaxHistoryPage, MaxListPage)
	}
}
