package admin

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"
)

const (
	// sessionTTL is how long the UI may reconnect with the session it was
	// given instead of the password (it does on every page load).
	sessionTTL = 12 * time.Hour
	// Password attempts are checked at most attemptRate a second, with
	// bursts of attemptBurst, across all UIs: bcrypt is slow on purpose,
	// and a guesser should not get to spend the gateway's CPU on it.
	attemptRate  = 5
	attemptBurst = 10
)

// bcryptLen is the length of every bcrypt hash.
const bcryptLen = 60

// errInvalid is the refusal the UI recognises, and shows, as such.
var errInvalid = errors.New("invalid credentials")

// authenticator checks the UI's sign-ins. The sessions it hands out are
// signed with a key derived from the password hash, so that every gateway
// of a deployment, configured alike, accepts the others' sessions: the UI
// reconnects to whichever gateway the balancer picks.
type authenticator struct {
	creds    Credentials
	key      []byte
	attempts *rate.Limiter
	now      func() time.Time
}

func newAuthenticator(creds Credentials) (*authenticator, error) {
	if _, err := bcrypt.Cost([]byte(creds.PasswordHash)); err != nil || len(creds.PasswordHash) != bcryptLen {
		return nil, fmt.Errorf("admin UI: the password hash must be a bcrypt hash (gateway hash-password makes one): %v", cmp.Or(err, errors.New("wrong length")))
	}
	key := sha256.Sum256([]byte("parley admin-ui session\x00" + creds.Username + "\x00" + creds.PasswordHash))
	return &authenticator{creds: creds, key: key[:], attempts: rate.NewLimiter(attemptRate, attemptBurst), now: time.Now}, nil
}

// check signs in a handshake's auth: a session handed out before, or the
// username and password. It returns the session to give the UI when the
// password was used.
func (a *authenticator) check(auth map[string]any) (newSession string, err error) {
	if id, ok := auth["sessionId"].(string); ok && a.valid(id) {
		return "", nil
	}
	user, _ := auth["username"].(string)
	password, _ := auth["password"].(string)
	if user == "" && password == "" {
		return "", errInvalid
	}
	if !a.attempts.Allow() {
		return "", errors.New("too many sign-in attempts; try again in a few seconds")
	}
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(a.creds.Username)) == 1
	// The hash is compared even for a wrong user, so that the time taken
	// does not tell which it was.
	passOK := bcrypt.CompareHashAndPassword([]byte(a.creds.PasswordHash), []byte(password)) == nil
	if !userOK || !passOK {
		return "", errInvalid
	}
	return a.session(), nil
}

// session returns a session that expires sessionTTL from now: the expiry
// and its MAC.
func (a *authenticator) session() string {
	var exp [8]byte
	binary.BigEndian.PutUint64(exp[:], uint64(a.now().Add(sessionTTL).Unix()))
	return base64.RawURLEncoding.EncodeToString(exp[:]) + "." + base64.RawURLEncoding.EncodeToString(a.mac(exp[:]))
}

func (a *authenticator) valid(session string) bool {
	e, m, ok := strings.Cut(session, ".")
	if !ok {
		return false
	}
	exp, err1 := base64.RawURLEncoding.DecodeString(e)
	mac, err2 := base64.RawURLEncoding.DecodeString(m)
	if err1 != nil || err2 != nil || len(exp) != 8 || !hmac.Equal(mac, a.mac(exp)) {
		return false
	}
	return a.now().Unix() < int64(binary.BigEndian.Uint64(exp))
}

func (a *authenticator) mac(b []byte) []byte {
	h := hmac.New(sha256.New, a.key)
	h.Write(b)
	return h.Sum(nil)
}
