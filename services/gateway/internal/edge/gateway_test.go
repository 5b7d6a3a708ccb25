package edge

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
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
	g, err := New(Config{Namespaces: []Namespace{{Name: "/", Auth: true}}, Tokens: Tokens{Secrets: [][]byte{secret}}})
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

// TestAuthenticateWithRotationAndPublicKeys checks tokens against several
// secrets (a rotation) and an identity provider's RSA and ECDSA public keys,
// and that a token cannot choose an algorithm its key was not given for.
func TestAuthenticateWithRotationAndPublicKeys(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherEC, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var pemFile []byte
	for _, pub := range []any{&rsaKey.PublicKey, &ecKey.PublicKey} {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		pemFile = append(pemFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	keys, err := ParsePublicKeys(pemFile)
	if err != nil || len(keys) != 2 {
		t.Fatalf("ParsePublicKeys = %d keys, %v", len(keys), err)
	}
	claims := jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}
	sign := func(method jwt.SigningMethod, key any) string {
		s, err := jwt.NewWithClaims(method, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)})
	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"newest secret", sign(jwt.SigningMethodHS256, []byte("new")), true},
		{"older secret during the rotation", sign(jwt.SigningMethodHS256, []byte("old")), true},
		{"retired secret", sign(jwt.SigningMethodHS256, []byte("retired")), false},
		{"RS256", sign(jwt.SigningMethodRS256, rsaKey), true},
		{"ES256", sign(jwt.SigningMethodES256, ecKey), true},
		{"ES256 with another key", sign(jwt.SigningMethodES256, otherEC), false},
		{"HS256 keyed with the RSA public key", sign(jwt.SigningMethodHS256, rsaPEM), false},
		{"RS384", sign(jwt.SigningMethodRS384, rsaKey), false},
	}
	g, err := New(Config{Namespaces: []Namespace{{Name: "/", Auth: true}}, Tokens: Tokens{
		Secrets: [][]byte{[]byte("new"), []byte("old")}, PublicKeys: keys,
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, reason := g.authenticate(map[string]any{"token": tt.token})
			if ok := reason == "" && user == "alice"; ok != tt.ok {
				t.Errorf("authenticate = %q, %q; want accepted %v", user, reason, tt.ok)
			}
		})
	}
	if _, err := ParsePublicKeys([]byte("not a key")); err == nil {
		t.Error("a file without keys was accepted")
	}
	if _, err := ParsePublicKeys(rsaPEM); err != nil {
		t.Errorf("PKCS #1 RSA key refused: %v", err)
	}
}
