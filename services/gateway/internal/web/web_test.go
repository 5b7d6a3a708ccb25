package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestHandler(t *testing.T) {
	secret := []byte("s3cret")
	dev := httptest.NewServer(Handler(Options{Namespace: "/chat", DevSecret: secret, DevTokenTTL: time.Hour}))
	defer dev.Close()
	prod := httptest.NewServer(Handler(Options{Namespace: "/app"}))
	defer prod.Close()

	tests := []struct {
		name       string
		srv        *httptest.Server
		method     string
		path, body string
		wantCode   int
		wantBody   string
	}{
		{"page", dev, "GET", "/", "", 200, "<title>Parley</title>"},
		{"stylesheet", dev, "GET", "/style.css", "", 200, "--accent"},
		{"config with dev tokens", dev, "GET", "/api/web-config", "", 200, `{"dev_tokens":true,"namespace":"/chat"}`},
		{"config without", prod, "GET", "/api/web-config", "", 200, `{"dev_tokens":false,"namespace":"/app"}`},
		{"dev token", dev, "POST", "/api/dev-token", `{"name":"Ann Lee"}`, 200, `"user":"Ann Lee"`},
		{"dev token empty name", dev, "POST", "/api/dev-token", `{"name":""}`, 400, "display name"},
		{"dev token control character", dev, "POST", "/api/dev-token", `{"name":"a\u0000b"}`, 400, "display name"},
		{"dev token too long", dev, "POST", "/api/dev-token", `{"name":"` + strings.Repeat("a", 33) + `"}`, 400, "display name"},
		{"dev token not JSON", dev, "POST", "/api/dev-token", `name=Ann`, 400, "display name"},
		{"dev tokens off", prod, "POST", "/api/dev-token", `{"name":"Ann"}`, 405, ""},
		{"missing file", dev, "GET", "/nope.js", "", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, tt.srv.URL+tt.path, strings.NewReader(tt.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b strings.Builder
			_, _ = io.Copy(&b, resp.Body)
			if resp.StatusCode != tt.wantCode || !strings.Contains(b.String(), tt.wantBody) {
				t.Fatalf("%s %s: %d %q, want %d containing %q", tt.method, tt.path, resp.StatusCode, b.String(), tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestDevTokenVerifies(t *testing.T) {
	secret := []byte("s3cret")
	srv := httptest.NewServer(Handler(Options{Namespace: "/chat", DevSecret: secret, DevTokenTTL: time.Hour}))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/api/dev-token", "application/json", strings.NewReader(`{"name":"Ann"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Parse(body.Token, func(*jwt.Token) (any, error) { return secret, nil }, jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	if sub, _ := tok.Claims.GetSubject(); sub != "Ann" {
		t.Fatalf("sub = %q, want Ann", sub)
	}
	exp, _ := tok.Claims.GetExpirationTime()
	if d := time.Until(exp.Time); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("expires in %v, want about an hour", d)
	}
}
