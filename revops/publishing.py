"""Outputs published as one unit: a whole folder per run and one pointer switched atomically.

An output folder holds::

    runs/<UTC stamp>-<label>/   every file of one run, written whole before anyone sees it
    latest -> runs/...          the published run: a symlink replaced in one os.replace
    <name> -> latest/<name>     stable links, so `out/reconciliation.csv` keeps working

Files are written into `.staging-<host>-<pid>-*`, renamed into `runs/` (one rename), then
`latest` is switched. A run that dies at any point leaves `latest` on a whole earlier run; its
staging folder or unpublished run folder is swept by the next run (only once its process is
gone: a concurrent live run is left alone).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from revops.errors import InputError
from revops.escaping import csv_safe

RUNS = "runs"
LATEST = "latest"
STAGING_PREFIX = ".staging-"
OWNER_FILE = ".owner.json"
# Steps of one publication, in order; tests crash at each (see `crash_hook`).
STEPS = ("staged", "placed", "committed", "switched", "linked")
# A staging folder left by another host cannot be checked for a live process: after this long
# it is stale whatever its owner.
FOREIGN_STALE_SECONDS = 24 * 3600

# Called with each step's name as it completes; tests set it to simulate a crash there.
crash_hook: Callable[[str], None] | None = None


def checkpoint(name: str) -> None:
    """Mark a step of a publication done (one of STEPS); where tests crash a run."""
    if crash_hook is not None:
        crash_hook(name)


class Publication:
    """One run's outputs on their way into an output folder."""

    def __init__(self, out_dir: Path, label: str) -> None:
        self.out_dir = out_dir
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self.folder = out_dir / RUNS / f"{stamp}-{_safe_label(label)}"
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            prefix = f"{STAGING_PREFIX}{socket.gethostname()}-{os.getpid()}-"
            self.staging = Path(tempfile.mkdtemp(prefix=prefix, dir=out_dir))
        except OSError as exc:
            why = "is a file, not a folder" if out_dir.is_file() else (exc.strerror or str(exc))
            raise InputError(f"the output folder (--out) {out_dir} {why}") from None
        _write_owner(self.staging)
        self.placed = False

    def carry_forward(self) -> None:
        """Link the published run's files this run does not rewrite into the staging folder
        (a migration plan's folder gathers dry-run, verification and rollback files)."""
        current = self.out_dir / LATEST
        if not current.is_dir():
            return
        for path in current.iterdir():
            target = self.staging / path.name
            if path.name != OWNER_FILE and path.is_file() and not target.exists():
                try:
                    os.link(path, target)
                except OSError:
                    shutil.copy2(path, target)

    def place(self) -> Path:
        """Move the staged files into their run folder (one rename); not yet published."""
        if not self.placed:
            checkpoint("staged")
            self.folder.parent.mkdir(exist_ok=True)
            os.rename(self.staging, self.folder)
            self.placed = True
            checkpoint("placed")
        return self.folder

    def switch(self) -> None:
        """Point `latest` at this run's folder, then the stable per-file links at `latest`."""
        self.place()
        (self.folder / OWNER_FILE).unlink(missing_ok=True)
        point_latest(self.out_dir, self.folder)
        checkpoint("switched")
        link_names(self.out_dir)
        checkpoint("linked")

    def discard(self) -> None:
        """Remove what this run wrote and did not publish (after an ordinary failure)."""
        shutil.rmtree(self.staging, ignore_errors=True)
        if self.placed and latest_folder(self.out_dir) != self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def publication(out_dir: Path, label: str = "run", carry: bool = False) -> Iterator[Publication]:
    """A Publication: write into `.staging`, optionally `place()` and commit elsewhere (the
    warehouse naming the folder), and on leaving the block the run is switched in.

    Stale staging of dead runs is swept first. An ordinary exception discards this run's
    files; a kill (or BaseException) leaves them for the next run's sweep.
    """
    sweep_stale(out_dir)
    pub = Publication(out_dir, label)
    try:
        yield pub
        if carry:
            pub.carry_forward()
        pub.switch()
    except Exception:
        pub.discard()
        raise


# What publish_whole writes: name -> a frame (escaped CSV), text, or bytes (a workbook).
Content = pd.DataFrame | str | bytes


def publish_whole(
    out_dir: Path,
    label: str,
    files: Mapping[str, Content] | Callable[[Path], Mapping[str, Content]],
    committed: Path | None = None,
    commit: Callable[[Path], None] | None = None,
) -> Path:
    """Publish `files` as one run; returns its folder. Stage, place, `commit(folder)` (the
    warehouse rows naming the folder), switch `latest`.

    `files` maps a name to a frame (written as escaped CSV), text or bytes; or it is a function
    of the run's folder giving that mapping, for content that names its own folder (a summary
    listing its files). `committed` is the folder the warehouse names as published: `latest`
    is first rolled forward to it when a run was killed between its commit and its switch.
    """
    recover(out_dir, committed)
    with publication(out_dir, label) as pub:
        contents = files(pub.folder) if callable(files) else files
        for name, content in contents.items():
            write_content(pub.staging / name, content)
        folder = pub.place()
        if commit is not None:
            commit(folder)
            checkpoint("committed")
    return folder


def write_content(path: Path, content: Content) -> None:
    """One output file: a frame as escaped CSV (ISO dates, LF), text as UTF-8, or bytes."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        csv_safe(content).to_csv(path, index=False, date_format="%Y-%m-%d", lineterminator="\n")


def point_latest(out_dir: Path, folder: Path) -> None:
    """Replace the `latest` symlink with one to `folder`, atomically (rename over it)."""
    link = out_dir / LATEST
    temp = out_dir / f"{STAGING_PREFIX}latest-{os.getpid()}-{os.urandom(4).hex()}"
    temp.symlink_to(folder.relative_to(out_dir))
    os.replace(temp, link)


def recover(out_dir: Path, committed: Path | None) -> bool:
    """Roll `latest` forward to `committed`, a run folder another store (the warehouse) names
    as published, when a crash between that commit and the switch left `latest` behind.

    Only forward: a `latest` as new as `committed` or newer stays. True when it moved.
    """
    if committed is None or not committed.is_dir():
        return False
    current = latest_folder(out_dir)
    if current is not None and current.name >= committed.name:
        return False
    (committed / OWNER_FILE).unlink(missing_ok=True)
    point_latest(out_dir, committed)
    link_names(out_dir)
    return True


def latest_folder(out_dir: Path) -> Path | None:
    """The run folder `latest` points at, or None."""
    link = out_dir / LATEST
    if not link.is_symlink():
        return None
    return out_dir / os.readlink(link)


def link_names(out_dir: Path) -> None:
    """`<name> -> latest/<name>` for every file of the published run; links to files the
    published run no longer has are removed. A plain file of the same name (from before the
    run folders) is replaced by its link."""
    current = out_dir / LATEST
    names = {p.name for p in current.iterdir() if p.name != OWNER_FILE}
    for name in sorted(names):
        link = out_dir / name
        if link.is_symlink() and os.readlink(link) == f"{LATEST}/{name}":
            continue
        if link.is_dir() and not link.is_symlink():
            continue
        temp = out_dir / f"{STAGING_PREFIX}link-{os.getpid()}-{os.urandom(4).hex()}"
        temp.symlink_to(f"{LATEST}/{name}")
        os.replace(temp, link)
    for path in out_dir.iterdir():
        stale = path.is_symlink() and path.name not in names | {LATEST}
        if stale and os.readlink(path).startswith(f"{LATEST}/"):
            path.unlink(missing_ok=True)


def sweep_stale(out_dir: Path) -> list[Path]:
    """Remove staging folders and unpublished run folders whose process is gone.

    A folder is stale when its owner (host, pid in `.owner.json`) is this host and no longer
    runs, or it is another host's and older than FOREIGN_STALE_SECONDS. The published run and
    live runs are never touched. Returns what was removed.
    """
    if not out_dir.is_dir():
        return []
    published = latest_folder(out_dir)
    candidates = [p for p in out_dir.iterdir() if p.name.startswith(STAGING_PREFIX)]
    runs = out_dir / RUNS
    if runs.is_dir():
        candidates += [p for p in runs.iterdir() if (p / OWNER_FILE).exists()]
    removed = []
    for path in candidates:
        if path == published or not _is_stale(path):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _is_stale(path: Path) -> bool:
    owner = _read_owner(path)
    if owner is None:
        # No owner written yet (a folder a moment old) or a bare temp link: age decides.
        return _age(path) > 60
    if owner.get("host") != socket.gethostname():
        return _age(path) > FOREIGN_STALE_SECONDS
    return not process_alive(int(owner.get("pid", 0)))


def process_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _age(path: Path) -> float:
    try:
        return datetime.now(UTC).timestamp() - path.lstat().st_mtime
    except OSError:
        return 0.0


def _write_owner(folder: Path) -> None:
    owner = {"host": socket.gethostname(), "pid": os.getpid()}
    (folder / OWNER_FILE).write_text(json.dumps(owner), encoding="utf-8")


def _read_owner(path: Path) -> dict[str, object] | None:
    try:
        return json.loads((path / OWNER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _safe_label(label: str) -> str:
    kept = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in label)
    return kept.strip("-.")[:80] or "run"
