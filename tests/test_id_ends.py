"""The column-wise Stripe mapping refuses an id with anything but printable ASCII at an end
(the record-by-record read then names it): the check reads Arrow's buffers, and must say
what the regex `^[^!-~]|[^!-~]$` says, for any text, missing values and sliced arrays."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given
from hypothesis import strategies as st

from revops.connectors.stripe_mapping_columns import _unprintable_end

TEXT = st.one_of(
    st.none(),
    st.sampled_from(["in_1", " in_1", "in_1 ", "in_1\t", "é", "aé", "éa", "a\x7f", "~!"]),
    st.text(min_size=1, max_size=6),
)


def regex_says(values: pa.Array) -> bool:
    return bool(pc.any(pc.match_substring_regex(values, r"^[^!-~]|[^!-~]$")).as_py())


@given(texts=st.lists(TEXT, max_size=20), cut=st.integers(0, 5))
def test_the_buffer_check_is_the_regex(texts: list[str | None], cut: int) -> None:
    values = pa.array(texts, pa.string())
    for part in (values, values.slice(min(cut, len(values))), pa.chunked_array([values])):
        assert _unprintable_end(part) is regex_says(part)
