"""What `make server` (scripts/local_server.sh) makes in the Prefect server it starts, safe
to re-run (each object is updated in place by name, never duplicated):

- with --reports-folder, the report location block `local-file-system/revops-reports` over
  that folder (the script serving it sets REVOPS_REPORTS_BASE_URL);
- with --alerts, the automations of configs/alerts.yaml, notifying through the notification
  block REVOPS_ALERTS_BLOCK names, or a Custom Webhook block `revops-alerts` saved for
  REVOPS_ALERTS_WEBHOOK_URL; with neither, no automation (and it says so).

Prints the shell lines the worker's environment needs (`export REVOPS_REPORTS_BLOCK=...`);
what it did goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from revops.connectors.prefect_objects import (
    ensure_automations,
    ensure_report_block,
    ensure_webhook_block,
)
from revops.tasks.alerts import alerts_config


def main() -> None:
    """Make the objects asked for; print the worker's exports."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports-folder", type=Path)
    parser.add_argument("--alerts", action="store_true")
    args = parser.parse_args()
    if args.reports_folder is not None:
        block = ensure_report_block(args.reports_folder)
        print(f"export REVOPS_REPORTS_BLOCK={shlex.quote(block)}")
        print(f"reports: block {block} over {args.reports_folder}", file=sys.stderr)
    if args.alerts:
        notify = os.environ.get("REVOPS_ALERTS_BLOCK")
        webhook = os.environ.get("REVOPS_ALERTS_WEBHOOK_URL")
        if not notify and webhook:
            notify = ensure_webhook_block(webhook)
        if not notify:
            print(
                "alerts: no automation created: set REVOPS_ALERTS_BLOCK to a notification "
                "block (slack-webhook/..., custom-webhook/...) or REVOPS_ALERTS_WEBHOOK_URL",
                file=sys.stderr,
            )
            return
        for line in ensure_automations(alerts_config().automations, notify):
            print(f"alerts: {line}, notifying through {notify}", file=sys.stderr)


if __name__ == "__main__":
    main()
