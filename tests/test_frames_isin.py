"""revops.frames.isin gives what pandas' isin gives, for Arrow-backed strings (where it asks
Arrow to build the set) and for any other dtype (where it is pandas' own)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from revops.frames import isin

ARROW_STRINGS = pd.StringDtype("pyarrow", na_value=np.nan)
TEXT = st.one_of(st.none(), st.sampled_from(["", "a", "001DEMO", " a", "é", "=1"]), st.text())


@given(values=st.lists(TEXT, max_size=30), among=st.lists(TEXT, max_size=30))
def test_isin_is_pandas_isin(values: list[str | None], among: list[str | None]) -> None:
    series = pd.Series(values, dtype=ARROW_STRINGS)
    expected = series.isin(among).to_numpy(dtype=bool)
    for given_as in (among, set(among), pd.Series(among, dtype=ARROW_STRINGS), pd.Index(among)):
        assert (isin(series, given_as) == expected).all()
    plain = pd.Series(values, dtype=object)
    assert (isin(plain, among) == plain.isin(among).to_numpy(dtype=bool)).all()
