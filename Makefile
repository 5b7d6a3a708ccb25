# Parley developer commands. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

TMP := $(CURDIR)/.tmp
BIN := $(TMP)/bin
export PATH := $(BIN):$(PATH)

# Pinned tool versions, installed into .tmp/bin by `make tools`.
BUF_VERSION := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPCURL_VERSION := v1.9.4
# protovalidate's .proto rules, read from its Go module (no schema registry needed).
PROTOVALIDATE_VERSION := v1.2.2

MODULES := ./proto/... ./services/kit/... ./services/rooms/... ./services/gateway/... ./bench/...

# Settings of `make run` (a local, single-machine development setup).
RUN_DATA_DIR ?= $(TMP)/data
RUN_GRPC_PORT ?= 50051
RUN_METRICS_PORT ?= 9091
RUN_SERVICE_TOKEN ?= dev-service-token
RUN_ADMIN_TOKEN ?= dev-admin-token
RUN_GATEWAY_PORT ?= 3000

RUN_JWT_SECRET ?= dev-jwt-secret
RUN_ADMIN_UI_USER ?= admin
RUN_ADMIN_UI_PASSWORD ?= parley-dev

# Settings of `make run-cluster`: Redis, two rooms replicas on it, two gateways.
CLUSTER_DIR ?= $(TMP)/cluster
CLUSTER_REDIS_PORT ?= 6380

NODE_TESTS := services/gateway/test/node
BENCH_NODE := bench/node
WEB := services/gateway/web
WEB_BUNDLE := services/gateway/internal/web/static/app.js
ADMIN_UI := services/gateway/internal/adminui/static/dist

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: build ## Build and run the rooms service (embedded store) and the gateway, with dev tokens
	@echo "Parley is starting:"
	@echo "  chat page           http://localhost:$(RUN_GATEWAY_PORT)/  (sign in with any display name: development tokens are on)"
	@echo "  socket.io gateway   http://localhost:$(RUN_GATEWAY_PORT)  (namespace / serves the classic chat, every socket in room1; /chat needs a token)"
	@echo "  socket.io Admin UI  http://localhost:$(RUN_GATEWAY_PORT)/admin/  (server URL http://localhost:$(RUN_GATEWAY_PORT), user $(RUN_ADMIN_UI_USER), password $(RUN_ADMIN_UI_PASSWORD); docs/admin-ui.md)"
	@echo "  rooms service gRPC  localhost:$(RUN_GRPC_PORT)  (metrics http://localhost:$(RUN_METRICS_PORT)/metrics, data in $(RUN_DATA_DIR))"
	@echo "Connect any socket.io v4 client, e.g. in Node:"
	@echo "  const s = io('http://localhost:$(RUN_GATEWAY_PORT)'); s.on('receive message', m => console.log(m)); s.emit('send message', 'room1', 'hello')"
	@echo "A sample token for /chat (user alice): $$($(BIN)/gateway token --jwt-secret $(RUN_JWT_SECRET) alice)"
	@echo "Administer with grpcurl ($(BIN)/grpcurl after 'make tools'; more in docs/admin.md):"
	@echo "  grpcurl -plaintext localhost:$(RUN_GRPC_PORT) list"
	@echo "  grpcurl -plaintext -H 'authorization: Bearer $(RUN_ADMIN_TOKEN)' localhost:$(RUN_GRPC_PORT) parley.rooms.v1.AdminService/GetStats"
	@echo "Ctrl-C stops both."
	@trap 'kill $$(jobs -p) 2>/dev/null; wait' INT TERM; \
	admin_hash=$$(echo '$(RUN_ADMIN_UI_PASSWORD)' | $(BIN)/gateway hash-password) || exit 1; \
	$(BIN)/rooms --listen :$(RUN_GRPC_PORT) --metrics-listen :$(RUN_METRICS_PORT) --data-dir $(RUN_DATA_DIR) \
		--service-token $(RUN_SERVICE_TOKEN) --admin-token $(RUN_ADMIN_TOKEN) & \
	$(BIN)/gateway --listen :$(RUN_GATEWAY_PORT) --rooms-addr localhost:$(RUN_GRPC_PORT) \
		--service-token $(RUN_SERVICE_TOKEN) --cors-origins '*' --config services/gateway/dev.json \
		--jwt-secret $(RUN_JWT_SECRET) --dev-tokens \
		--admin-ui-username $(RUN_ADMIN_UI_USER) --admin-ui-password-hash "$$admin_hash" & \
	wait -n; status=$$?; kill $$(jobs -p) 2>/dev/null; wait; exit $$status

.PHONY: run-cluster
run-cluster: build ## Run Redis, two rooms replicas on it and two gateways (:3000, :3001), with dev tokens
	@command -v redis-server >/dev/null || { echo "run-cluster needs redis-server: apt-get install redis-server" >&2; exit 1; }
	@mkdir -p $(CLUSTER_DIR)/redis
	@echo "Parley is starting on Redis (localhost:$(CLUSTER_REDIS_PORT), data in $(CLUSTER_DIR)/redis, fsync on every write):"
	@echo "  chat pages          http://localhost:3000/ and http://localhost:3001/  (two gateways: chat across them)"
	@echo "  rooms replicas      localhost:50051 and localhost:50052  (metrics :9091 and :9092)"
	@echo "  socket.io Admin UI  http://localhost:3000/admin/  (user $(RUN_ADMIN_UI_USER), password $(RUN_ADMIN_UI_PASSWORD): the sockets of both gateways)"
	@echo "Each gateway reaches both replicas: stop one (pkill -f 'rooms --listen :50052') and chat goes on."
	@echo "Ctrl-C stops all of it."
	@trap 'kill $$(jobs -p) 2>/dev/null; wait' INT TERM; \
	admin_hash=$$(echo '$(RUN_ADMIN_UI_PASSWORD)' | $(BIN)/gateway hash-password) || exit 1; \
	redis-server --port $(CLUSTER_REDIS_PORT) --bind 127.0.0.1 --dir $(CLUSTER_DIR)/redis \
		--appendonly yes --appendfsync always --save '' --loglevel warning & \
	for i in $$(seq 100); do redis-cli -p $(CLUSTER_REDIS_PORT) ping >/dev/null 2>&1 && break; sleep 0.1; done; \
	redis-cli -p $(CLUSTER_REDIS_PORT) ping >/dev/null || { echo "redis-server did not start" >&2; kill $$(jobs -p) 2>/dev/null; exit 1; }; \
	for i in 1 2; do \
		$(BIN)/rooms --listen :5005$$i --metrics-listen :909$$i --redis-url redis://localhost:$(CLUSTER_REDIS_PORT) \
			--service-token $(RUN_SERVICE_TOKEN) --admin-token $(RUN_ADMIN_TOKEN) & \
	done; \
	for port in 3000 3001; do \
		$(BIN)/gateway --listen :$$port --rooms-addr localhost:50051,localhost:50052 \
			--service-token $(RUN_SERVICE_TOKEN) --cors-origins '*' --config services/gateway/dev.json \
			--jwt-secret $(RUN_JWT_SECRET) --dev-tokens \
			--admin-ui-username $(RUN_ADMIN_UI_USER) --admin-ui-password-hash "$$admin_hash" --admin-ui-server-id gateway-$$port & \
	done; \
	wait

.PHONY: build
build: web ## Build the service binaries into .tmp/bin
	go build -o $(BIN)/rooms ./services/rooms/cmd/rooms
	go build -o $(BIN)/gateway ./services/gateway/cmd/gateway

.PHONY: test
test: tools node-deps web ## Run every test of every module with the race detector
	go test -race -count=1 -timeout 20m $(MODULES)

.PHONY: faults
faults: node-deps web ## Run the long fault suite (processes killed under load, storms), 1,000 concurrent joins x JOIN_RUNS, a 10-minute soak of 1,000 clients
	PARLEY_RACE=off PARLEY_FAULTS=long go test -count=1 -timeout 60m -v -run '^TestFaults(OnRedis|OnRedisCluster)?$$' ./services/gateway/internal/e2e/
	PARLEY_RACE=off PARLEY_JOINERS=1000 go test -count=$(JOIN_RUNS) -timeout 60m -run '^TestConcurrentJoinsOfANewRoom$$' ./services/gateway/internal/e2e/
	PARLEY_RACE=off PARLEY_SOAK=$(SOAK_TIME) PARLEY_SOAK_CLIENTS=$(SOAK_CLIENTS) \
		go test -count=1 -timeout 60m -v -run '^TestSoak$$' ./services/gateway/internal/e2e/

.PHONY: web
web: $(WEB_BUNDLE) $(ADMIN_UI)/index.html ## Bundle the chat page's script and the Admin UI (npm) for embedding in the gateway

$(WEB_BUNDLE): $(WEB)/package-lock.json $(WEB)/src/app.js
	cd $(WEB) && npm ci --no-audit --no-fund && npm run --silent build

# The Admin UI's build as published, less its source maps, with its icon
# font served from the gateway instead of a CDN: the UI's buttons are icons.
# Built aside and moved in place whole, so that a failed build leaves none.
$(ADMIN_UI)/index.html: $(WEB_BUNDLE)
	rm -rf $(ADMIN_UI) $(ADMIN_UI).new && mkdir -p $(ADMIN_UI).new/mdi/css $(ADMIN_UI).new/mdi/fonts
	cp -R $(WEB)/node_modules/@socket.io/admin-ui/ui/dist/. $(ADMIN_UI).new/
	find $(ADMIN_UI).new -name '*.map' -delete
	cp $(WEB)/node_modules/@mdi/font/css/materialdesignicons.min.css $(ADMIN_UI).new/mdi/css/
	cp $(WEB)/node_modules/@mdi/font/fonts/materialdesignicons-webfont.woff2 $(WEB)/node_modules/@mdi/font/fonts/materialdesignicons-webfont.woff $(ADMIN_UI).new/mdi/fonts/
	sed -i 's|https://cdn.jsdelivr.net/npm/@mdi/font@latest/css/materialdesignicons.min.css|mdi/css/materialdesignicons.min.css|' $(ADMIN_UI).new/index.html
	grep -q 'href="mdi/css/materialdesignicons.min.css"' $(ADMIN_UI).new/index.html
	mv $(ADMIN_UI).new $(ADMIN_UI)

.PHONY: node-deps
node-deps: $(NODE_TESTS)/node_modules/.package-lock.json ## Install the Node test clients (npm ci)

$(NODE_TESTS)/node_modules/.package-lock.json: $(NODE_TESTS)/package-lock.json
	cd $(NODE_TESTS) && npm ci --no-audit --no-fund

# Fuzz targets and the package of each; `make fuzz` runs each for FUZZ_TIME.
FUZZ_TARGETS := FuzzEvent:./services/gateway/internal/edge FuzzDecodeOffsets:./services/gateway/internal/wire FuzzDecodeEvent:./services/gateway/internal/wire FuzzFrames:./services/gateway/internal/app
FUZZ_TIME ?= 15s
# Minimizing a new input is bounded by runs, not time: a worker whose
# minimizing runs out of time is killed and restarted, and a FuzzFrames
# worker starts a rooms service and a gateway first.
FUZZ_MINIMIZE ?= 100x

# The load runs of `make faults`: 1,000 sockets joining one new room at once,
# JOIN_RUNS times, and the soak. They run the binaries as they ship, without
# the race detector (make test runs short versions of each with it).
JOIN_RUNS ?= 50
SOAK_TIME ?= 10m
SOAK_CLIENTS ?= 1000

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZ_TIME (default 15s); seeds are in the tests
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t%%:*} ($(FUZZ_TIME))"; \
		go test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZ_TIME) -fuzzminimizetime $(FUZZ_MINIMIZE) "$${t#*:}"; \
	done

.PHONY: bench
bench: build bench-deps ## Compare Parley with a Node socket.io server on the issue #9 workloads (~15 min; BENCH_QUICK=1: ~3), write docs/performance.md
	go build -o $(BIN)/parley-bench ./bench/cmd/parley-bench
	$(BIN)/parley-bench --root $(CURDIR)

.PHONY: bench-deps
bench-deps: $(BENCH_NODE)/node_modules/.package-lock.json ## Install the Node reference server of make bench (npm ci)

$(BENCH_NODE)/node_modules/.package-lock.json: $(BENCH_NODE)/package-lock.json
	cd $(BENCH_NODE) && npm ci --no-audit --no-fund

.PHONY: bench-go
bench-go: ## Run the Go microbenchmarks
	go test -run '^$$' -bench . -benchmem -count 6 $(MODULES)

.PHONY: generate
generate: tools protodeps ## Regenerate Go code (and the descriptors reflection serves) from the .proto files
	buf generate
	buf build --path proto/parley --exclude-imports -o proto/apidesc/parley.binpb

.PHONY: checkgenerate
checkgenerate: generate ## Fail if the committed generated code is stale
	@git diff --exit-code -- proto || (echo "generated code is out of date: run 'make generate' and commit" >&2; exit 1)
	@test -z "$$(git status --porcelain -- proto)" || (git status --porcelain -- proto; echo "untracked generated files: run 'make generate' and commit" >&2; exit 1)

.PHONY: lint
lint: tools protodeps ## buf lint, buf format check, go vet and gofmt
	buf lint
	buf format --diff --exit-code proto
	go vet $(MODULES)
	@test -z "$$(gofmt -l proto services bench)" || (gofmt -l proto services bench; echo "gofmt needed" >&2; exit 1)

.PHONY: tools
tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/grpcurl ## Install pinned tools into .tmp/bin

$(BIN)/buf:
	GOBIN=$(BIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(BIN)/protoc-gen-go-grpc:
	GOBIN=$(BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(BIN)/grpcurl:
	GOBIN=$(BIN) go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

.PHONY: protodeps
protodeps: $(TMP)/protodeps/protovalidate/buf/validate/validate.proto

$(TMP)/protodeps/protovalidate/buf/validate/validate.proto:
	@dir=$$(GOFLAGS=-mod=mod go mod download -json github.com/bufbuild/protovalidate@$(PROTOVALIDATE_VERSION) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p'); \
	test -n "$$dir" || { echo "could not download github.com/bufbuild/protovalidate@$(PROTOVALIDATE_VERSION)" >&2; exit 1; }; \
	mkdir -p $(TMP)/protodeps/protovalidate && cp -r "$$dir/proto/protovalidate/buf" $(TMP)/protodeps/protovalidate/ && chmod -R u+w $(TMP)/protodeps

.PHONY: clean
clean: ## Remove .tmp (tools, dev data)
	rm -rf $(TMP)
