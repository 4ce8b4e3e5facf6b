"""Text from outside systems written as data, never as code. Pure functions, no I/O.

Account names, invoice ids, descriptions and reasons come from the CRM and Stripe, editable by
anyone with access there. A spreadsheet opening our CSVs would run a cell beginning with `=`,
`+`, `-` or `@` (or a tab or carriage return before one) as a formula; markdown artifacts are
rendered as HTML by the Prefect UI. Every writer passes such text through here.
"""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd

# OWASP "CSV Injection": cells starting with these are read as formulas by spreadsheets.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def is_formula_like(text: str) -> bool:
    """Whether a spreadsheet would read `text` as a formula (a plain number is not one)."""
    return text.startswith(FORMULA_START) and _NUMBER.fullmatch(text) is None


def csv_cell(text: str) -> str:
    """One text cell made inert the way OWASP describes: a leading single quote."""
    return "'" + text if is_formula_like(text) else text


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every text cell made inert; numbers, dates and empty cells unchanged.

    Vectorised per column: only text (object/str) columns are looked at, the number test
    only on cells starting like a formula; a `str` column stays `str`.
    """
    out = {}
    for column in frame.columns:
        series = frame[column]
        if series.dtype == object:
            # Bool however the column is filled (an all-empty column would map to float NaN).
            is_text = np.fromiter((isinstance(v, str) for v in series), bool, len(series))
            text = series.where(is_text)
        elif pd.api.types.is_string_dtype(series):
            text = series
        else:
            out[column] = series
            continue
        risky = text.str.startswith(FORMULA_START).fillna(False).to_numpy(dtype=bool, copy=True)
        if risky.any():
            numbers = text[risky].str.fullmatch(_NUMBER.pattern).fillna(False)
            risky[risky] = ~numbers.to_numpy(dtype=bool)
        if risky.any():
            kept = series if series.dtype != object else series.astype(object)
            series = kept.where(~risky, "'" + text)
        out[column] = series
    return pd.DataFrame(out, index=frame.index)


def markdown_text(value: object) -> str:
    """Text shown as itself in markdown (a table cell too): HTML escaped, markdown's
    punctuation backslash-escaped, line breaks as spaces."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    text = " ".join(str(value).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def html_text(value: object) -> str:
    """Text shown as itself in HTML."""
    return html.escape(str(value), quote=True)
