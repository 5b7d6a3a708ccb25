module github.com/parleyhq/parley/bench

go 1.26.0

replace github.com/parleyhq/parley/services/kit => ../services/kit

require (
	github.com/parleyhq/parley/services/kit v0.0.0-00010101000000-000000000000
	golang.org/x/sync v0.25.0
	golang.org/x/sys v0.48.0
)

require github.com/gorilla/websocket v1.5.3
