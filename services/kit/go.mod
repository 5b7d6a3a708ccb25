module github.com/parleyhq/parley/services/kit

go 1.26.0
