package admin

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Socket is a socket as the UI shows it (the instrument's SerializedSocket).
type Socket struct {
	ID string `json:"id"`
	// ClientID is the start of the Engine.IO connection's id, which the UI
	// groups sockets by; the rest of it is not shown, as the instrument
	// does not.
	ClientID  string         `json:"clientId"`
	Transport string         `json:"transport"`
	Nsp       string         `json:"nsp"`
	Data      map[string]any `json:"data"`
	Handshake Handshake      `json:"handshake"`
	// Rooms are the socket's rooms, its own id among them as in socket.io.
	Rooms []string `json:"rooms"`
}

// Handshake is the request a socket connected with, without its secrets.
type Handshake struct {
	Address string         `json:"address"`
	Headers map[string]any `json:"headers"`
	Query   map[string]any `json:"query"`
	// Issued is when, in Unix milliseconds.
	Issued  int64  `json:"issued"`
	Secure  bool   `json:"secure"`
	Time    string `json:"time"`
	URL     string `json:"url"`
	Xdomain bool   `json:"xdomain"`
}

// secret matches the names of headers and query parameters whose values the
// UI is not shown: tokens and cookies would let whoever sees them act as
// the user.
var secret = regexp.MustCompile(`(?i)auth|cookie|token|secret|passw|key|session|signature`)

// redacted returns headers or query parameters as the instrument shows
// them, names in lower case and single values unwrapped, with the values of
// secret names replaced.
func redacted[M ~map[string]any](values M, lower bool) map[string]any {
	out := make(map[string]any, len(values))
	for k, v := range values {
		if lower {
			k = strings.ToLower(k)
		}
		switch vs := v.(type) {
		case []string:
			if len(vs) == 1 {
				v = vs[0]
			}
		case []any:
			if len(vs) == 1 {
				v = vs[0]
			}
		}
		if secret.MatchString(k) {
			v = "(hidden)"
		}
		out[k] = v
	}
	return out
}

// ClientID shortens an Engine.IO connection id as the instrument does.
func ClientID(engineID string) string {
	if len(engineID) > 12 {
		return engineID[:12]
	}
	return engineID
}

// NewHandshake describes a socket's handshake for the UI, without secrets.
func NewHandshake(h *socket.Handshake) Handshake {
	headers := redacted(h.Headers, true)
	return Handshake{
		Address: firstAddress(headers, h.Address),
		Headers: headers,
		Query:   redacted(h.Query, false),
		Issued:  h.Issued,
		Secure:  h.Secure,
		Time:    h.Time,
		URL:     redactedURL(h.Url),
		Xdomain: h.Xdomain,
	}
}

// redactedURL hides the secret query parameters of a request's URL.
func redactedURL(raw string) string {
	path, query, ok := strings.Cut(raw, "?")
	if !ok {
		return raw
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		return path
	}
	for k := range values {
		if secret.MatchString(k) {
			values.Set(k, "(hidden)")
		}
	}
	return path + "?" + values.Encode()
}

// firstAddress is the client's address as the instrument shows it: the one
// a proxy says it forwarded, else the connection's.
func firstAddress(headers map[string]any, remote string) string {
	for _, h := range []string{"cf-connecting-ip", "x-forwarded-for"} {
		if v, ok := headers[h].(string); ok && v != "" {
			return strings.TrimSpace(strings.Split(v, ",")[0])
		}
	}
	return remote
}
