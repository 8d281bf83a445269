#!/usr/bin/env bash
# Deterministic deployment demo (runbook "Deterministic demo path").
# Packages the edge WASM module, runs rollout-pass.json with the runbook's
# settings into a fresh .tau/demo-deployment, prints health, status and the
# channel store, and exits 0 only when the rollout gate is `pass`.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -x .venv/bin/tau-ops ]; then
  exec .venv/bin/tau-ops demo "$@"
elif command -v tau-ops >/dev/null 2>&1; then
  exec tau-ops demo "$@"
else
  exec python3 -m tau_ops demo "$@"
fi
