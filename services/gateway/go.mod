module github.com/parleyhq/parley/services/gateway

go 1.26.0

replace github.com/parleyhq/parley/proto => ../../proto
