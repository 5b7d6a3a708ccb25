package profiling

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestServe(t *testing.T) {
	if lis, err := Listen(t.Context(), ""); lis != nil || err != nil {
		t.Fatalf("Listen(\"\") = %v, %v: want profiling off", lis, err)
	}
	if err := Serve(t.Context(), nil, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("Serve(nil) = %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	lis, err := Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, lis, slog.New(slog.DiscardHandler)) }()
	for path, want := range map[string]string{
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/goroutine?debug=1": "goroutine profile:",
	} {
		resp, err := http.Get("http://" + Addr(lis) + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %.100q, want 200 with %q", path, resp.StatusCode, body, want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after shutdown: %v", err)
	}
}
