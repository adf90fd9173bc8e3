#!/usr/bin/env bash
# Vet and test the agent (no network, no root needed).
set -euo pipefail
cd "$(dirname "$0")"
export GOTOOLCHAIN=local
test -z "$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
go vet ./... && go test ./...
