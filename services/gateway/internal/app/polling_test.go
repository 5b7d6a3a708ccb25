package app

import "testing"

func TestValidPayload(t *testing.T) {
	tests := []struct {
		payload string
		want    bool
	}{
		{"4hello", true},
		{"40", true},
		{"42[\"x\"]\x1e3\x1ebAQID", true},
		{"6", true},
		{"", true},
		{"abc", false},
		{"4hello\x1e", false},
		{"\x1e4", false},
		{"7", false},
		{"4a\x1e\x1e4b", false},
	}
	for _, tt := range tests {
		if got := validPayload([]byte(tt.payload)); got != tt.want {
			t.Errorf("validPayload(%q) = %v, want %v", tt.payload, got, tt.want)
		}
	}
}
