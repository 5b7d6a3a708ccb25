package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parleyhq/parley/services/kit/cli"
)

// runToken implements `gateway token [--jwt-secret S] [--ttl D] USER`: it
// prints a client token for USER, signed as the gateway expects, for trying
// auth namespaces by hand or from scripts.
func runToken(args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("gateway token", flag.ContinueOnError)
	fs.SetOutput(stdout)
	secretEnv := cli.EnvName(envPrefix, "jwt-secret")
	secret := fs.String("jwt-secret", getenv(secretEnv), "HS256 secrets, comma-separated; the first signs (env "+secretEnv+")")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gateway token [flags] USER\n\nPrints a client token (HS256 JWT) whose subject is USER.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || fs.Arg(0) == "" {
		fs.Usage()
		return errors.New("token: give exactly one user id")
	}
	if *secret == "" {
		return errors.New("token: --jwt-secret is required")
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": fs.Arg(0), "exp": time.Now().Add(*ttl).Unix(),
	}).SignedString([]byte(strings.TrimSpace(strings.Split(*secret, ",")[0])))
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
