"""Every CSV the flows write passes its cells through revops.escaping.csv_safe (formula
injection, OWASP): a writer added without it fails here. The Data Loader export
(connectors/files_export.py) is exempt on purpose: it must read back exactly as written."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WRITE = re.compile(r"^\s*(?P<call>.*)\.to_csv\(", re.M)


def test_every_csv_writer_escapes_its_cells() -> None:
    unescaped = []
    for folder in ("tasks", "flows"):
        for path in sorted((ROOT / folder).glob("*.py")):
            for match in WRITE.finditer(path.read_text()):
                if not match["call"].lstrip().startswith("csv_safe("):
                    line = path.read_text().count("\n", 0, match.start()) + 1
                    unescaped.append(f"{path.relative_to(ROOT)}:{line}")
    assert not unescaped, f"CSV written without csv_safe: {unescaped}"
