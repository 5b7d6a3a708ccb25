module github.com/parleyhq/parley/bench

go 1.26.0

replace github.com/parleyhq/parley/services/kit => ../services/kit

require github.com/gorilla/websocket v1.5.3

require golang.org/x/sync v0.25.0
