package edge

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestAuthenticate(t *testing.T) {
	secret := []byte("secret")
	sign := func(method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(method, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	hour := time.Now().Add(time.Hour).Unix()
	tests := []struct {
		name   string
		auth   map[string]any
		user   string
		reason string
	}{
		{"valid", map[string]any{"token": sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "exp": hour})}, "alice", ""},
		{"no auth", nil, "", "missing_token"},
		{"token not a string", map[string]any{"token": 5}, "", "missing_token"},
		{"malformed", map[string]any{"token": "a.b.c"}, "", "invalid_token"},
		{"other secret", map[string]any{"token": sign(jwt.SigningMethodHS256, []byte("other"), jwt.MapClaims{"sub": "alice", "exp": hour})}, "", "invalid_token"},
		{"alg none", map[string]any{"token": sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "alice", "exp": hour})}, "", "invalid_token"},
		{"expired", map[string]any{"token": sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Minute).Unix()})}, "", "invalid_token"},
		{"no expiry", map[string]any{"token": sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice"})}, "", "invalid_token"},
		{"no subject", map[string]any{"token": sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": hour})}, "", "invalid_token"},
		{"subject with control characters", map[string]any{"token": sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "al\x00ice", "exp": hour})}, "", "invalid_token"},
		{"subject too long", map[string]any{"token": sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": strings.Repeat("a", 129), "exp": hour})}, "", "invalid_token"},
	}
	g, err := New(Config{Namespaces: []Namespace{{Name: "/", Auth: true}}, JWTSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, reason := g.authenticate(tt.auth)
			if user != tt.user || reason != tt.reason {
				t.Errorf("authenticate = %q, %q; want %q, %q", user, reason, tt.user, tt.reason)
			}
		})
	}
}
