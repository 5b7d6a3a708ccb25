// Command rooms runs Parley's rooms service: rooms, membership and message
// history behind a gRPC API. Run it with --help for its flags.
package main

import (
	"github.com/parleyhq/parley/services/kit/cli"
	"github.com/parleyhq/parley/services/rooms/internal/app"
)

func main() { cli.Main("rooms", app.Run) }
