#!/usr/bin/env bash
# Runs every test of the repository: each Go module's tests with the race
# detector, then the TypeScript package's. Extra arguments go to every
# go test (e.g. ./test.sh -count=1).
#
# The PostgreSQL and NATS tests read ATP_TEST_POSTGRES and ATP_TEST_NATS and
# skip, naming the variable, when it is unset (.ci/run sets both).
set -euo pipefail
cd "$(dirname "$0")"

# The main module, then the nested ones: modules of their own so that what
# only their tests, examples or adapters need never enters the dependency
# graph of a project that imports atp-go.
for m in . tests/interop examples/routers mcp/gosdk tests/cluster; do
	echo "== go test -race ($m)"
	(cd "$m" && go test -race "$@" ./...)
done

echo "== clients/typescript (npm ci, build, tests)"
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
	echo "the TypeScript client's tests need Node.js 20 or newer (with npm): install it and run ./test.sh again" >&2
	exit 1
fi
# Its end-to-end tests build these Go programs: built here first (outside
# the Node tests' time limit), they are cache hits there. On empty caches
# the first build compiles the pure-Go SQLite driver without -race, minutes
# on a busy machine.
go build ./cmd/atp ./clients/typescript/test/go/llmcall ./examples/hello/cmd/toolkit ./clients/typescript/bench/go
(cd clients/typescript && npm ci --no-audit --no-fund && npm test)
