package app

import (
	"io"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestAdminUIFlags(t *testing.T) {
	const hash = "$2a$10$3I6CWkADi5NuyeVVJMuXq./lTfV3.Rzqjn/XZqHqdnUjnhQce79WS"
	base := []string{"--service-token", "t"}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		enabled bool
		wantErr string
	}{
		{name: "off by default", args: base},
		{name: "on", args: append([]string{"--admin-ui-username", "admin", "--admin-ui-password-hash", hash}, base...), enabled: true},
		{name: "on from the environment", args: base, enabled: true, env: map[string]string{
			"PARLEY_GATEWAY_ADMIN_UI_USERNAME": "admin", "PARLEY_GATEWAY_ADMIN_UI_PASSWORD_HASH": hash}},
		{name: "username alone", args: append([]string{"--admin-ui-username", "admin"}, base...), wantErr: "needs both"},
		{name: "hash alone", args: append([]string{"--admin-ui-password-hash", hash}, base...), wantErr: "needs both"},
		{name: "namespace of the chat", args: append([]string{"--admin-ui-username", "a", "--admin-ui-password-hash", hash, "--admin-ui-namespace", "/"}, base...),
			wantErr: "also a chat namespace"},
		{name: "tiny reports", args: append([]string{"--admin-ui-username", "a", "--admin-ui-password-hash", hash, "--admin-ui-max-report-bytes", "100"}, base...),
			wantErr: "at least 4096"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one about %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.AdminUI.Enabled() != tt.enabled {
				t.Errorf("enabled %v, want %v", cfg.AdminUI.Enabled(), tt.enabled)
			}
		})
	}
}

func TestHashPassword(t *testing.T) {
	var out strings.Builder
	if err := runHashPassword(strings.NewReader("correct horse\n"), &out); err != nil {
		t.Fatal(err)
	}
	hash := strings.TrimSpace(out.String())
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse")); err != nil {
		t.Errorf("the hash printed, %q, does not match the password: %v", hash, err)
	}
	if err := runHashPassword(strings.NewReader("short\n"), io.Discard); err == nil {
		t.Error("a 5-byte password was hashed")
	}
}
