// Package e2e holds the gateway's end-to-end tests: they build and run the
// real rooms service and gateway binaries on loopback ports and drive them
// with real socket.io clients (the npm socket.io-client under test/node, and
// the zishang520 Go client).
package e2e
