"""usage.csv of the files source read whole: each cell stripped, the date exactly YYYY-MM-DD,
the quantity a finite non-negative number, every bad value named by file, row and column.

The range read of connectors.usage_csv serves a run when it can vouch for the file; this read
is what it hands over to.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from revops.connectors.files_read import read_csv_frame, rows_location
from revops.connectors.salesforce_mapping import strict_dates
from revops.connectors.usage_csv import USAGE_COLUMNS
from revops.errors import InputError, InputErrors
from revops.frames import conform, empty_frame, validate_frame


def read_usage(path: Path, accounts: Collection[str] | None = None) -> pd.DataFrame:
    """Canonical usage of the whole file (empty when absent); every bad value named by row and
    column. With `accounts`, every row is checked and those accounts' rows are kept."""
    name = path.name
    if not path.exists():
        return empty_frame("usage")
    header, raw, rows, lines = read_csv_frame(path)
    header = [column.lower() if column.lower() in USAGE_COLUMNS else column for column in header]
    missing = [column for column in USAGE_COLUMNS if column not in header]
    if missing:
        raise InputError(f"required column(s) missing: {', '.join(missing)}", file=name)
    raw = raw.set_axis(header, axis=1).astype("str")[list(USAGE_COLUMNS)]
    text = raw.apply(lambda column: column.str.strip()).replace("", pd.NA)
    days = strict_dates(text["date"])
    quantity = pd.to_numeric(text["quantity"], errors="coerce").astype("float64")
    checks = {
        "date": (days.isna().to_numpy(), "is not a date (YYYY-MM-DD)"),
        "quantity": (
            ~(np.isfinite(quantity) & (quantity >= 0)).to_numpy(),
            "is not a non-negative number",
        ),
    }
    problems = [
        InputError(
            f"{raw.at[i, column]!r} {why}",
            file=name,
            row=int(rows[i]),
            column=column,
            line=int(lines[i]),
        )
        for i in np.flatnonzero(checks["date"][0] | checks["quantity"][0])
        for column, (bad, why) in checks.items()
        if bad[i]
    ]
    if problems:
        raise problems[0] if len(problems) == 1 else InputErrors(problems)
    frame = pd.DataFrame(
        {
            "account_id": text["account_id"],
            "date": days,
            "metric": text["metric"],
            "quantity": quantity,
        }
    )
    if accounts is not None:  # every row checked above; only these accounts' kept
        mine = frame["account_id"].isin(list(accounts)).to_numpy()
        frame, rows = frame[mine].reset_index(drop=True), np.asarray(rows)[mine]
    return validate_frame(
        "usage", conform("usage", frame), rows_location(name, rows, {}, header_lines=1)
    )
