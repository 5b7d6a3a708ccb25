// Command gateway runs Parley's socket.io gateway: it serves socket.io v4
// clients and maps their events onto the rooms service. Run it with --help for
// its flags.
package main

import (
	"github.com/parleyhq/parley/services/gateway/internal/app"
	"github.com/parleyhq/parley/services/kit/cli"
)

func main() { cli.Main("gateway", app.Run) }
