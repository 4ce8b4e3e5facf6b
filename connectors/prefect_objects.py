"""Objects the project keeps in a Prefect server, made idempotently (`make server`, deploy):
the report location block. A re-run updates them in place and never adds a second one."""

from __future__ import annotations

from pathlib import Path

REPORTS_BLOCK_NAME = "revops-reports"


def ensure_report_block(folder: Path, name: str = REPORTS_BLOCK_NAME) -> str:
    """A LocalFileSystem block named `name` over `folder` (made or updated); its slug, the
    value of REVOPS_REPORTS_BLOCK."""
    from prefect.filesystems import LocalFileSystem

    folder.mkdir(parents=True, exist_ok=True)
    LocalFileSystem(basepath=str(folder.resolve())).save(name, overwrite=True)
    return f"local-file-system/{name}"
