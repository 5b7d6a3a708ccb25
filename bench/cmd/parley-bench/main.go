// Command parley-bench runs make bench: the same workloads against a Node
// socket.io 4.8 reference server and against Parley, side by side, and
// writes the comparison to docs/performance.md. Run it with --help for its
// flags.
package main

import "github.com/parleyhq/parley/services/kit/cli"

func main() { cli.Main("parley-bench", run) }
