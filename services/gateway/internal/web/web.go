// Package web serves Parley's chat page: the static files embedded in the
// gateway binary (the page's script is bundled with the socket.io client by
// `make web`), the page's configuration, and, in development, a token
// endpoint that signs in any display name.
package web

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"regexp"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

//go:embed static
var static embed.FS

// Options configure the page.
type Options struct {
	// Namespace the page connects to; it should require auth.
	Namespace string
	// DevSecret, when set, lets anyone sign in under a display name: the
	// page asks for a name and this handler signs a token for it. Only for
	// development; production pages are given real tokens.
	DevSecret []byte
	// DevTokenTTL is how long a development token lasts.
	DevTokenTTL time.Duration
}

// names a development sign-in accepts: short, printable, no surprises.
var validName = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} _.-]{0,31}$`)

// Handler serves the page at / and its API under /api/.
func Handler(opts Options) http.Handler {
	files, _ := fs.Sub(static, "static")
	mux := http.NewServeMux()
	fileServer := http.FileServerFS(files)
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/app.js" {
			if _, err := fs.Stat(files, "app.js"); err != nil {
				http.Error(w, "the page's script is not bundled into this binary: build it with `make web` (or `make build`)", http.StatusServiceUnavailable)
				return
			}
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'")
		fileServer.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /api/web-config", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"namespace": opts.Namespace, "dev_tokens": len(opts.DevSecret) > 0})
	})
	if len(opts.DevSecret) > 0 {
		mux.HandleFunc("POST /api/dev-token", func(w http.ResponseWriter, r *http.Request) {
			var req struct {
				Name string `json:"name"`
			}
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10)).Decode(&req); err != nil || !validName.MatchString(req.Name) {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": "a display name is 1 to 32 letters, digits, spaces, dots, dashes or underscores"})
				return
			}
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
				"sub": req.Name, "exp": time.Now().Add(opts.DevTokenTTL).Unix(),
			}).SignedString(opts.DevSecret)
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "could not sign a token"})
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"token": tok, "user": req.Name})
		})
	}
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
