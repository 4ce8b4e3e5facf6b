"""Where people open a run's outputs: a Prefect filesystem block served at a base URL.

The location is a Prefect block the user configures (REVOPS_REPORTS_BLOCK, its slug such as
`local-file-system/revops-reports`): a `LocalFileSystem` folder (what `make server` serves over
http), a `RemoteFileSystem` (`s3://`, `gs://`, `az://` through fsspec), or the official
integrations' `S3Bucket`, `GcsBucket`, `AzureBlobStorageContainer`: any `WritableFileSystem`
(`write_path(path, content)`). REVOPS_REPORTS_BASE_URL is where that location is served (a web
server over the folder, a bucket's website or CDN): the block stores, the URL opens.

A run folder is copied under `<prefix>/<run folder>/`, a path no other run uses, and report.html
is written last: a link is only made once every file it points at is there, so nobody follows
a link into half a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from revops.errors import InputError

if TYPE_CHECKING:
    from prefect.filesystems import WritableFileSystem

REPORT = "report.html"
# Files of a run folder that are bookkeeping, not output (revops.publishing).
_SKIPPED = {".owner.json"}


@dataclass(frozen=True)
class ReportLocation:
    """A writable Prefect filesystem block and the URL its root is served at."""

    block: str
    base_url: str
    storage: WritableFileSystem

    def url(self, path: str) -> str:
        """The URL of `path` (relative to the block's root), each segment percent-encoded."""
        return f"{self.base_url}/{quote(path.strip('/'), safe='/')}"

    def share(self, folder: Path, prefix: str) -> str:
        """Copy the files of a run folder to `<prefix>/<folder name>/`, report.html last;
        the URL of the copied report.html (or of the folder when it has none)."""
        target = f"{prefix.strip('/')}/{folder.name}"
        files = sorted(
            (p for p in folder.iterdir() if p.is_file() and p.name not in _SKIPPED),
            key=lambda p: (p.name == REPORT, p.name),
        )
        for path in files:
            self.storage.write_path(f"{target}/{path.name}", path.read_bytes())
        has_report = any(p.name == REPORT for p in files)
        return self.url(f"{target}/{REPORT}" if has_report else f"{target}/")


def load_block(
    slug: str, setting: str, kind: type, wanted: str, error: type[Exception] = InputError
) -> Any:
    """The Prefect block `slug` (`<block type>/<name>`) a setting names, which must be a
    `kind`; `error` naming the setting when it does not exist or is another kind."""
    from prefect.blocks.core import Block

    try:
        found = Block.load(slug)
    except (ValueError, KeyError) as exc:
        raise error(f"{setting} {slug!r} cannot be loaded: {exc}") from None
    if not isinstance(found, kind):
        raise error(f"{setting} {slug!r} is a {type(found).__name__}, not {wanted}")
    return found


def report_location(block: str | None, base_url: str | None) -> ReportLocation | None:
    """The configured location (loads the block), or None when no block is configured.

    A block without a base URL, a base URL that is not http(s), a block that does not exist
    or cannot be written are errors naming the setting, before any work is done.
    """
    if not block:
        if base_url:
            raise InputError("REVOPS_REPORTS_BASE_URL is set but REVOPS_REPORTS_BLOCK is not")
        return None
    if not base_url:
        raise InputError(
            f"REVOPS_REPORTS_BLOCK is {block!r} but REVOPS_REPORTS_BASE_URL is not set: "
            "the URL the block's files are served at"
        )
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise InputError(f"REVOPS_REPORTS_BASE_URL must be an http(s) URL, got {base_url!r}")
    from prefect.filesystems import WritableFileSystem

    storage = load_block(
        block,
        "REVOPS_REPORTS_BLOCK",
        WritableFileSystem,
        "a block that stores files (LocalFileSystem, RemoteFileSystem or a bucket block)",
        InputError,
    )
    return ReportLocation(block=block, base_url=base_url.rstrip("/"), storage=storage)
