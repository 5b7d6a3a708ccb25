package adminui

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	if _, err := fs.Stat(static, "static/dist/index.html"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the Admin UI is not bundled: %v (make web)", err)
		}
		t.Skipf("the Admin UI is not bundled: %v (make web)", err)
	}
	scripts, _ := fs.Glob(static, "static/dist/js/app.*.js")
	if len(scripts) != 1 {
		t.Fatalf("scripts of the bundle: %v", scripts)
	}
	script := strings.TrimPrefix(scripts[0], "static/dist")
	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", Handler()))

	tests := []struct {
		path, wantType, wantBody, wantCache string
		want                                int
	}{
		{path: "/admin", want: http.StatusTemporaryRedirect},
		{path: "/admin/", want: http.StatusOK, wantType: "text/html", wantBody: "Socket.IO Admin UI", wantCache: "no-cache"},
		{path: "/admin/", want: http.StatusOK, wantBody: `href="mdi/css/materialdesignicons.min.css"`},
		{path: "/admin" + script, want: http.StatusOK, wantType: "text/javascript", wantCache: "immutable"},
		{path: "/admin/mdi/fonts/materialdesignicons-webfont.woff2", want: http.StatusOK, wantType: "font/woff2"},
		{path: "/admin/nowhere.js", want: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d", rec.Code, tt.want)
			}
			if got := rec.Header().Get("Content-Type"); !strings.HasPrefix(got, tt.wantType) {
				t.Errorf("content type %q, want %q", got, tt.wantType)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body lacks %q", tt.wantBody)
			}
			if got := rec.Header().Get("Cache-Control"); !strings.Contains(got, tt.wantCache) {
				t.Errorf("cache control %q, want %q", got, tt.wantCache)
			}
			if rec.Code == http.StatusOK && !strings.Contains(rec.Header().Get("Content-Security-Policy"), "script-src 'self'") {
				t.Errorf("no content security policy: %q", rec.Header().Get("Content-Security-Policy"))
			}
		})
	}
}
