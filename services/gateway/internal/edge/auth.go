package edge

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parleyhq/parley/proto/rules"
)

// Tokens are the keys client tokens (JWTs) are checked with: HS256 shared
// secrets — several during a rotation, the newest first — and the public keys
// of an identity provider, RSA for RS256 and P-256 ECDSA for ES256.
type Tokens struct {
	Secrets    [][]byte
	PublicKeys []crypto.PublicKey
}

func (t Tokens) empty() bool { return len(t.Secrets) == 0 && len(t.PublicKeys) == 0 }

// keys returns the keys a token signed with alg may be checked with; an
// algorithm without keys has none, so a token cannot pick a weaker one (an
// HS256 token "signed" with a public key is refused).
func (t Tokens) keys(alg string) jwt.VerificationKeySet {
	var set jwt.VerificationKeySet
	switch alg {
	case jwt.SigningMethodHS256.Alg():
		for _, s := range t.Secrets {
			set.Keys = append(set.Keys, s)
		}
	case jwt.SigningMethodRS256.Alg():
		for _, k := range t.PublicKeys {
			if rk, ok := k.(*rsa.PublicKey); ok {
				set.Keys = append(set.Keys, rk)
			}
		}
	case jwt.SigningMethodES256.Alg():
		for _, k := range t.PublicKeys {
			if ek, ok := k.(*ecdsa.PublicKey); ok {
				set.Keys = append(set.Keys, ek)
			}
		}
	}
	return set
}

// ParsePublicKeys reads every public key of a PEM file: "PUBLIC KEY" (PKIX)
// blocks with RSA or P-256 keys, and "RSA PUBLIC KEY" (PKCS #1) blocks.
func ParsePublicKeys(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			break
		}
		data = rest
		var (
			key crypto.PublicKey
			err error
		)
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		default:
			return nil, fmt.Errorf("PEM block %q: want PUBLIC KEY or RSA PUBLIC KEY", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", len(keys)+1, err)
		}
		switch k := key.(type) {
		case *rsa.PublicKey:
		case *ecdsa.PublicKey:
			if k.Curve != elliptic.P256() {
				return nil, fmt.Errorf("PEM block %d: ECDSA keys must be P-256 (ES256)", len(keys)+1)
			}
		default:
			return nil, fmt.Errorf("PEM block %d: %T keys are not supported", len(keys)+1, key)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("no public key found")
	}
	return keys, nil
}

// authenticate checks the handshake's auth.token: a JWT with an expiry,
// signed with one of the configured secrets (HS256) or public keys (RS256,
// ES256), whose subject is the user id. It returns the subject, or the
// reason for the refusal that the client is told.
func (g *Gateway) authenticate(auth map[string]any) (user, reason string) {
	raw, _ := auth["token"].(string)
	if raw == "" {
		return "", "missing_token"
	}
	t := g.cfg.Tokens
	tok, err := jwt.Parse(raw, func(tok *jwt.Token) (any, error) { return t.keys(tok.Method.Alg()), nil },
		jwt.WithValidMethods([]string{"HS256", "RS256", "ES256"}), jwt.WithExpirationRequired())
	if err != nil {
		return "", "invalid_token"
	}
	sub, err := tok.Claims.GetSubject()
	if err != nil || !rules.UserID.Valid(sub) {
		return "", "invalid_token"
	}
	return sub, ""
}
