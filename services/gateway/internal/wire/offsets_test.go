package wire

import (
	"maps"
	"testing"
)

func TestOffsetsRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		pos  map[string]uint64
		want string
	}{
		{"one room", map[string]uint64{"room1": 42}, "room1=42"},
		{"sorted", map[string]uint64{"b": 2, "a": 1}, "a=1&b=2"},
		{"escaped", map[string]uint64{`q"&=%é`: 7}, "q%22%26%3D%25%C3%A9=7"},
		{"empty", map[string]uint64{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EncodeOffsets(tt.pos)
			if got != tt.want {
				t.Fatalf("EncodeOffsets = %q, want %q", got, tt.want)
			}
			if back := DecodeOffsets(got); !maps.Equal(back, tt.pos) {
				t.Fatalf("DecodeOffsets(%q) = %v, want %v", got, back, tt.pos)
			}
		})
	}
}

func TestDecodeOffsetsIgnoresJunk(t *testing.T) {
	got := DecodeOffsets("a=1&junk&b=x&=3&%zz=4&c=18446744073709551615")
	want := map[string]uint64{"a": 1, "c": 18446744073709551615}
	if !maps.Equal(got, want) {
		t.Fatalf("DecodeOffsets = %v, want %v", got, want)
	}
}

// FuzzDecodeOffsets feeds the recovery offset string a client sends back,
// which may be anything: decoding never panics, and what it keeps encodes
// and decodes to itself.
func FuzzDecodeOffsets(f *testing.F) {
	for _, s := range []string{"room1=42", "a=1&b=2", "q%22%26%3D%25%C3%A9=7", "", "a=1&junk&b=x&=3&%zz=4", "c=18446744073709551616"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pos := DecodeOffsets(s)
		if back := DecodeOffsets(EncodeOffsets(pos)); !maps.Equal(back, pos) {
			t.Fatalf("%q: decoded %v, round trip %v", s, pos, back)
		}
	})
}

func TestPositionRoundTrip(t *testing.T) {
	pos := map[string]uint64{"a|b": 1, "c": 2}
	s := EncodePosition("k_-9", pos)
	if s != "k_-9|a%7Cb=1&c=2" {
		t.Fatalf("EncodePosition = %q", s)
	}
	key, back := DecodePosition(s)
	if key != "k_-9" || !maps.Equal(back, pos) {
		t.Fatalf("DecodePosition(%q) = %q, %v", s, key, back)
	}
	if key, back := DecodePosition("a=1"); key != "" || back["a"] != 1 {
		t.Fatalf("a position without a key: %q, %v", key, back)
	}
}
