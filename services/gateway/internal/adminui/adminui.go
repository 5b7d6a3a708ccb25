// Package adminui serves the socket.io Admin UI's static build, which
// `make web` copies from the npm package @socket.io/admin-ui into the
// gateway binary (package admin speaks the protocol it uses). Mount it with
// http.StripPrefix("/admin", adminui.Handler()) under "/admin/" of a
// ServeMux, which redirects "/admin" there.
package adminui

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// csp lets the UI run from the gateway: its scripts, styles and icon font
// are served here; Vuetify sets inline styles; its text font still comes
// from Google Fonts; and it connects to whatever server URL the operator
// types.
const csp = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline' https://fonts.googleapis.com; " +
	"font-src 'self' data: https://fonts.gstatic.com; img-src 'self' data:; connect-src 'self' http: https: ws: wss:; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// Handler serves the UI, its paths relative to the mount point.
func Handler() http.Handler {
	files, _ := fs.Sub(static, "static/dist")
	fileServer := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := fs.Stat(files, "index.html"); err != nil {
			http.Error(w, "the Admin UI is not bundled into this binary: build it with `make web` (or `make build`)", http.StatusServiceUnavailable)
			return
		}
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", csp)
		// Scripts, styles and images have content hashes in their names;
		// the page and the icon font do not.
		if strings.HasPrefix(r.URL.Path, "/js/") || strings.HasPrefix(r.URL.Path, "/css/") || strings.HasPrefix(r.URL.Path, "/img/") {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		fileServer.ServeHTTP(w, r)
	})
}
