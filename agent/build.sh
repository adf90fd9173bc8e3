#!/usr/bin/env bash
# Build the static kubemate-agent binary once per version; print its path.
set -euo pipefail
cd "$(dirname "$0")"
export GOTOOLCHAIN=local CGO_ENABLED=0
VERSION="${VERSION:-$(tr -d '[:space:]' < VERSION)}"
OUT="${OUT:-${KUBEMATE_CACHE:-$HOME/.cache/kubemate}/agent/kubemate-agent-$VERSION/kubemate-agent}"
if [ ! -x "$OUT" ]; then
  mkdir -p "$(dirname "$OUT")"
  go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$OUT.tmp" ./cmd/kubemate-agent
  mv "$OUT.tmp" "$OUT"
fi
echo "$OUT"
