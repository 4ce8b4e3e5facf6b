"""revops.frames.fingerprint: run ids are derived from it, so its values are pinned."""

from __future__ import annotations

import pandas as pd

from revops.frames import DATE, INSTANT, empty_frame, fingerprint


def every_dtype() -> pd.DataFrame:
    """One column of each canonical dtype, with repeats, missing values and -0.0."""
    return pd.DataFrame(
        {
            "id": pd.Series(["800A", "800B", "800A", None], dtype="str"),
            "minor": pd.Series([150000, -1, 0, 10**15], dtype="int64"),
            "count": pd.Series([3, None, 0, -2], dtype="Int64"),
            "share": pd.Series([12.5, float("nan"), -0.0, 0.0], dtype="float64"),
            "flag": pd.Series([True, False, True, False], dtype="bool"),
            "day": pd.Series(["2026-01-01", None, "2026-12-31", "1999-02-28"]).astype(DATE),
            "at": pd.to_datetime(
                ["2026-01-15T10:00:00Z", None, "2026-01-15T10:00:00.5Z", "2030-06-01T00:00:00Z"],
                utc=True,
                format="ISO8601",
            ).astype(INSTANT),
        }
    )


def test_fingerprint_values_are_pinned() -> None:
    # A change here changes every run id (a re-run on the same inputs would look new):
    # it has to be deliberate, e.g. a pandas upgrade that hashes differently.
    assert fingerprint(every_dtype()) == "b4542e4bed1b1907"
    assert fingerprint(empty_frame("contracts")) == "351019952fe4c1f5"


def test_fingerprint_follows_values_dtypes_and_order_not_the_index() -> None:
    frame = every_dtype()
    assert fingerprint(frame.set_axis([7, 8, 9, 10])) == fingerprint(frame)
    changed = frame.copy()
    changed.loc[1, "id"] = "800C"
    assert fingerprint(changed) != fingerprint(frame)
    assert fingerprint(frame.iloc[::-1]) != fingerprint(frame)
    assert fingerprint(frame.astype({"minor": "Int64"})) != fingerprint(frame)
