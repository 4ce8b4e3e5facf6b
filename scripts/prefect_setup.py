"""What `make server` (scripts/local_server.sh) makes in the Prefect server it starts, safe
to re-run: the report location block over a local folder the script serves over http.

Prints the shell lines the worker's environment needs (REVOPS_REPORTS_BLOCK, ...).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from revops.connectors.prefect_objects import ensure_report_block


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports-folder", type=Path, required=True)
    args = parser.parse_args()
    block = ensure_report_block(args.reports_folder)
    print(f"export REVOPS_REPORTS_BLOCK={shlex.quote(block)}")


if __name__ == "__main__":
    main()
