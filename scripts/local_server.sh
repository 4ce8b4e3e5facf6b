#!/usr/bin/env bash
# A local Prefect server with the project's deployments and a process worker.
# Ctrl-C stops the worker and the server. State lives in var/prefect-server/.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PREFECT_PORT:-4200}"
BIN=.venv/bin
export PREFECT_HOME="$PWD/var/prefect-server"
export PREFECT_API_URL="http://127.0.0.1:${PORT}/api"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export REVOPS_PROJECT_DIR="$PWD"
mkdir -p var/log "$PREFECT_HOME"

"$BIN/prefect" server start --host 127.0.0.1 --port "$PORT" >var/log/prefect-server.log 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:${PORT}/api/health" >/dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { echo "Prefect server failed; see var/log/prefect-server.log" >&2; exit 1; }
  sleep 1
done
"$BIN/prefect" work-pool inspect revops >/dev/null 2>&1 || "$BIN/prefect" work-pool create revops --type process >/dev/null
# One request budget per outside system, shared by every flow run (see connectors/rate_limits.py).
"$BIN/prefect" gcl inspect stripe-api >/dev/null 2>&1 || "$BIN/prefect" gcl create stripe-api --limit 20 --slot-decay-per-second 20 >/dev/null
"$BIN/prefect" gcl inspect salesforce-api >/dev/null 2>&1 || "$BIN/prefect" gcl create salesforce-api --limit 10 --slot-decay-per-second 10 >/dev/null
"$BIN/prefect" --no-prompt deploy --all >var/log/prefect-deploy.log 2>&1 \
  || { echo "deploy failed; see var/log/prefect-deploy.log" >&2; exit 1; }
echo "Prefect UI: http://127.0.0.1:${PORT}  (deployments: reconcile-invoices, nightly; source demo)"
echo "Run one now: PREFECT_API_URL=$PREFECT_API_URL $BIN/prefect deployment run nightly/nightly"
# Flow runs started by this worker share those budgets.
export STRIPE_PREFECT_RATE_LIMIT=stripe-api SALESFORCE_PREFECT_RATE_LIMIT=salesforce-api
"$BIN/prefect" worker start --pool revops
