// Package gateway will hold Parley's socket.io gateway: the process that
// terminates socket.io v4 connections and maps their events onto the rooms
// service's RPCs (see issue #3). The module exists now so the workspace and the
// build are laid out as they will stay.
package gateway
