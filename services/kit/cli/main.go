// Package cli is the command-line scaffolding Parley's service binaries share:
// a main that turns SIGINT and SIGTERM into the end of a context and errors
// into exit codes, and flag sets whose every flag may also be set from the
// environment.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Main is the whole body of a service's main function. run gets the
// command-line arguments without the program name and os.Getenv for flag
// defaults; its context ends on SIGINT or SIGTERM, so returning nil then is a
// clean shutdown. --help (flag.ErrHelp) exits 0; any other error is printed
// after name on stderr and exits 1.
func Main(name string, run func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}
