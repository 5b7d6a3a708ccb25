// Command testservice stands in for a Parley service in the kit's own tests:
// it is built from the kit's main, flag set and logger, logs the address it
// listens on like the services do, and stops when signalled.
package main

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/parleyhq/parley/services/kit/cli"
	"github.com/parleyhq/parley/services/kit/logging"
)

func main() { cli.Main("testservice", run) }

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("testservice", "KIT_TEST_", "Usage: testservice [flags]\n\nA stand-in service for the kit's tests.", stdout)
	listen := fs.String("listen", "127.0.0.1:0", "TCP listen address")
	stopErr := fs.String("stop-error", "", "error to fail with when stopped")
	var logFormat, logLevel string
	logging.AddFlags(fs.FlagSet, &logFormat, &logLevel)
	if err := fs.Parse(args, getenv); err != nil {
		return err
	}
	log, err := logging.New(logFormat, logLevel, stderr)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", *listen)
	if err != nil {
		return err
	}
	defer lis.Close()
	log.Info("testservice serving", "addr", lis.Addr().String())
	<-ctx.Done()
	log.Info("testservice stopping")
	if *stopErr != "" {
		return errors.New(*stopErr)
	}
	return nil
}
