package requestid

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for _, tt := range []struct {
		id   string
		want bool
	}{
		{"aZ09-_.:", true},
		{strings.Repeat("a", MaxLen), true},
		{strings.Repeat("a", MaxLen+1), false},
		{"", false},
		{"two words", false},
		{"line\nbreak", false},
		{"é", false},
	} {
		if got := Valid(tt.id); got != tt.want {
			t.Errorf("Valid(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestWithFrom(t *testing.T) {
	ctx := t.Context()
	if got := From(ctx); got != "" {
		t.Errorf("From of a bare context = %q, want none", got)
	}
	if got := From(With(ctx, "s1:7")); got != "s1:7" {
		t.Errorf("From(With(s1:7)) = %q", got)
	}
}
