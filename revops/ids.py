"""Salesforce record ids: the 15-character (case-sensitive) and 18-character forms as one.

Salesforce shows 15-character ids in its UI and reports and returns 18-character ones from
its API; the last three characters of the long form are a checksum of the letter case of the
first fifteen. Everywhere ids are compared they are normalised to 18 characters first, so a
15-character id in Stripe metadata or an old export names the same record as its twin.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_SUFFIX = np.array(list(_LETTERS))
_SHORT_ID = r"^[A-Za-z0-9]{15}$"
_SHORT_MATCH = re.compile(r"[A-Za-z0-9]{15}")


def salesforce_id18(value: str) -> str:
    """The 18-character form of a Salesforce id; anything not a 15-character id as it is.

    Plain Python (the record mappings call it once per record): the same rule as
    salesforce_ids18, one bit per capital letter of each five characters.
    """
    if _SHORT_MATCH.fullmatch(value) is None:
        return value
    return value + "".join(
        _LETTERS[sum(1 << j for j, c in enumerate(value[i : i + 5]) if "A" <= c <= "Z")]
        for i in (0, 5, 10)
    )


def salesforce_ids18(values: pd.Series) -> pd.Series:
    """Each 15-character Salesforce id with its checksum suffix (others unchanged; NA stays)."""
    text = values.astype("str")
    short = text.str.fullmatch(_SHORT_ID).fillna(False).to_numpy(dtype=bool)
    if not short.any():
        return text
    chars = np.array([list(v) for v in text[short]], dtype="<U1")
    upper = (chars >= "A") & (chars <= "Z")
    weights = 1 << np.arange(5)
    chunks = (upper.reshape(len(chars), 3, 5) * weights).sum(axis=2)
    suffix = pd.Series(
        ["".join(row) for row in _SUFFIX[chunks]], index=text.index[short], dtype="str"
    )
    out = text.copy()
    out[short] = text[short] + suffix
    return out


def key_ids18(keys: pd.Series) -> pd.Series:
    """Keys like `renewal:<id>:<date>` with each 15-character id part in its 18-character form.

    Lead keys are built from ids as the Salesforce API returns them (18 characters); a key
    written before from a 15-character id names the same record once its parts are normalised.
    """
    text = keys.astype("str")
    if not text.str.contains(r"(?:^|:)[A-Za-z0-9]{15}(?::|$)", regex=True).fillna(False).any():
        return text
    parts = text.str.split(":", expand=True)
    for column in parts.columns:
        present = parts[column].notna()
        parts.loc[present, column] = salesforce_ids18(parts.loc[present, column])
    joined = parts.apply(lambda row: ":".join(p for p in row if isinstance(p, str)), axis=1)
    return joined.where(keys.notna()).astype("str")
