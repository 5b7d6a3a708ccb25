// Package proto holds Parley's protobuf API (parley/rooms/v1) and the Go code
// generated from it by `make generate`. Import
// github.com/parleyhq/parley/proto/parley/rooms/v1 to call the rooms service.
package proto
