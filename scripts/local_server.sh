#!/usr/bin/env bash
# A local Prefect server with the project's deployments and a process worker.
# Ctrl-C stops the worker and the servers. State lives in var/prefect-server/.
# Reports: unless REVOPS_REPORTS_BLOCK names a block of your own (an S3 bucket, say, with
# REVOPS_REPORTS_BASE_URL where it is served), runs publish their report folders to the
# Prefect block local-file-system/revops-reports over var/reports/, which this script serves
# at http://127.0.0.1:${REVOPS_REPORTS_PORT:-4201} (loopback only), so report links open.
# Alerts: the automations of configs/alerts.yaml are created (or updated, never duplicated)
# when REVOPS_ALERTS_BLOCK names a notification block or REVOPS_ALERTS_WEBHOOK_URL a webhook.
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
REPORTS=""
trap 'kill $SERVER $REPORTS 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:${PORT}/api/health" >/dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { echo "Prefect server failed; see var/log/prefect-server.log" >&2; exit 1; }
  sleep 1
done
"$BIN/prefect" work-pool inspect revops >/dev/null 2>&1 || "$BIN/prefect" work-pool create revops --type process >/dev/null
# One request budget per outside system, shared by every flow run (see connectors/rate_limits.py).
"$BIN/prefect" gcl inspect stripe-api >/dev/null 2>&1 || "$BIN/prefect" gcl create stripe-api --limit 20 --slot-decay-per-second 20 >/dev/null
"$BIN/prefect" gcl inspect salesforce-api >/dev/null 2>&1 || "$BIN/prefect" gcl create salesforce-api --limit 10 --slot-decay-per-second 10 >/dev/null
if [ -z "${REVOPS_REPORTS_BLOCK:-}" ]; then
  REPORTS_PORT="${REVOPS_REPORTS_PORT:-4201}"
  mkdir -p var/reports
  "$BIN/python" -m http.server "$REPORTS_PORT" --bind 127.0.0.1 --directory var/reports \
    >var/log/reports-server.log 2>&1 &
  REPORTS=$!
  eval "$("$BIN/python" scripts/prefect_setup.py --reports-folder var/reports)"
  export REVOPS_REPORTS_BASE_URL="http://127.0.0.1:${REPORTS_PORT}"
fi
"$BIN/prefect" --no-prompt deploy --all >var/log/prefect-deploy.log 2>&1 \
  || { echo "deploy failed; see var/log/prefect-deploy.log" >&2; exit 1; }
# Alerts (configs/alerts.yaml): through REVOPS_ALERTS_BLOCK or REVOPS_ALERTS_WEBHOOK_URL.
"$BIN/python" scripts/prefect_setup.py --alerts
echo "Prefect UI: http://127.0.0.1:${PORT}  (deployments: reconcile-invoices, nightly; source demo)"
echo "Reports: block ${REVOPS_REPORTS_BLOCK}, served at ${REVOPS_REPORTS_BASE_URL:-?}"
echo "Run one now: PREFECT_API_URL=$PREFECT_API_URL $BIN/prefect deployment run nightly/nightly"
# Flow runs started by this worker share those budgets.
export STRIPE_PREFECT_RATE_LIMIT=stripe-api SALESFORCE_PREFECT_RATE_LIMIT=salesforce-api
"$BIN/prefect" worker start --pool revops
