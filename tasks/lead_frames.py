"""Column helpers the lead rules share: annualised amounts, first-matching reasons, texts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from revops.frames import FREQUENCY_MONTHS
from revops.tasks.expected_billing import expected_unit_minor


def annual_minor(contracts: pd.DataFrame, units: np.ndarray) -> np.ndarray:
    """`units` seats for a year at each contract's discounted unit amount, minor units."""
    months = contracts["billing_frequency"].map(FREQUENCY_MONTHS).to_numpy(dtype=np.int64)
    return expected_unit_minor(contracts) * np.asarray(units, dtype=np.int64) * (12 // months)


def first_reason(index: pd.Index, *rules: tuple[object, object]) -> pd.Series:
    """The text of the first rule whose mask holds, per row; NA when none does."""
    out = pd.Series(None, index=index, dtype=object)
    for mask, text in rules:
        hit = np.asarray(mask, dtype=bool) & out.isna().to_numpy()
        values = text.astype(object) if isinstance(text, pd.Series) else text
        out = out.mask(hit, values)
    return out


def count_text(numbers: pd.Series, noun: str) -> pd.Series:
    """'1 day', '3 days' for a column of counts."""
    return numbers.astype(str) + " " + noun + np.where(numbers == 1, "", "s")


def join_text(left: pd.Series, right: pd.Series, sep: str = "; ") -> pd.Series:
    """Element-wise join of two text columns, skipping empty parts."""
    both = (left != "") & (right != "")
    return (left + np.where(both, sep, "") + right).astype(object)
