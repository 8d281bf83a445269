#!/usr/bin/env bash
# WASM compile + edge smoke harness (runbook "WASM compile + edge smoke harness").
#
# Packages the compliant testdata modules into a throw-away state dir, then runs
# `tau-ops wasm-smoke` once over those deliverables (manifests re-verified),
# the modules packaging refuses (they still have to run), and the runaway
# canary that the sandbox must stop. Extra arguments go to `tau-ops wasm-smoke`
# (e.g. --json, --fuel N). Ends with `wasm smoke summary: status=...`; exit 0
# only when status=pass.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
W=testdata/deployment-wasm
STATE="$(mktemp -d "${TMPDIR:-/tmp}/tau-wasm-smoke.XXXXXX")"
trap 'rm -rf "$STATE"' EXIT

for module in edge-runtime wasi-p2-core component; do
  "$PY" -m tau_ops --deployment-state-dir "$STATE" \
    --deployment-wasm-package-module "$W/$module.wasm" \
    --deployment-wasm-package-blueprint-id "smoke-$module" >/dev/null
done

exec "$PY" -m tau_ops wasm-smoke --deployment-state-dir "$STATE" --deliverables \
  --module "$W/wasi-preview1.wasm" \
  --module "$W/unlisted-import.wasm" \
  --expect-stopped "$W/infinite-loop.wasm" \
  "$@"
