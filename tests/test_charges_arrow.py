"""charges.jsonl read column-wise (connectors.stripe_charges_arrow) gives exactly the frame of
the record-by-record mapping (stripe_mapping.charges_frame), and hands back to it (Unsure)
whatever it cannot vouch for, so every bad value is still named by row and Stripe field.

Variants follow the Stripe Charge object: `invoice` absent (API version basil and later),
`amount_refunded` absent, a failure code, `disputed` true, a zero-decimal currency (JPY), an
expanded `customer`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from revops.connectors import stripe_mapping
from revops.connectors.demo import DemoSource
from revops.connectors.files import FilesSource
from revops.connectors.files_read import read_jsonl
from revops.connectors.stripe_charges_arrow import Unsure, read_charges_jsonl
from revops.errors import InputError, InputErrors
from revops.frames import validate_frame
from tests.builders import export_demo


@pytest.fixture(scope="module")
def demo_charges(demo_source: DemoSource, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    folder = export_demo(demo_source, tmp_path_factory.mktemp("charges"))
    return [json.loads(line) for line in (folder / "charges.jsonl").read_text().splitlines()]


def write(folder: Path, charges: list[dict[str, Any]]) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "charges.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in charges))
    return path


def record_path(path: Path) -> pd.DataFrame:
    records, rows = read_jsonl(path)
    return stripe_mapping.charges_frame(records, rows=rows, file=path.name)


def variants(charges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The demo's charges with every optional shape of the Charge object among them."""
    out = [dict(c) for c in charges]
    out[0].pop("invoice")
    out[1].pop("amount_refunded")
    out[2] |= {"status": "failed", "failure_code": "card_declined"}
    out[3] |= {"disputed": True}
    out[4] |= {"currency": "jpy", "amount": 1200}
    out[5] |= {"customer": None, "invoice": None, "failure_code": ""}
    out[6].pop("disputed")
    out[7] |= {"currency": "EUR", "amount_refunded": 100}
    return out


def test_the_column_read_is_the_record_mapping(demo_charges: list[dict], tmp_path: Path) -> None:
    path = write(tmp_path, variants(demo_charges))
    fast = read_charges_jsonl(path)
    pd.testing.assert_frame_equal(fast, record_path(path), check_exact=True)
    assert len(fast) == len(demo_charges) > 50
    assert fast.loc[4, "currency"] == "JPY" and fast.loc[1, "amount_refunded_minor"] == 0
    assert pd.isna(fast.loc[0, "invoice_id"]) and bool(fast.loc[3, "disputed"])


@pytest.mark.parametrize(
    "change",
    [
        {"customer": {"id": "cus_x", "object": "customer"}},  # expanded: the record path reads it
        {"amount": "100"},
        {"amount": 1.5},
        {"currency": "usdollar"},
        {"created": 1_700_000_000_000},
        {"status": None},
        {"id": " ch_1"},
        {"disputed": "no"},
    ],
)
def test_what_it_cannot_vouch_for_is_unsure(
    demo_charges: list[dict], tmp_path: Path, change: dict[str, Any]
) -> None:
    charges = [dict(c) for c in demo_charges]
    charges[9] |= change
    with pytest.raises(Unsure):
        read_charges_jsonl(write(tmp_path, charges))


def test_blank_lines_and_empty_files_are_unsure(demo_charges: list[dict], tmp_path: Path) -> None:
    path = write(tmp_path, demo_charges[:3])
    path.write_text(path.read_text().replace("\n", "\n\n", 1))
    with pytest.raises(Unsure):
        read_charges_jsonl(path)
    path.write_text("")
    with pytest.raises(Unsure):
        read_charges_jsonl(path)


def test_the_files_source_reads_charges_either_way_and_names_bad_values(
    demo_charges: list[dict], tmp_path: Path
) -> None:
    path = write(tmp_path, variants(demo_charges))
    expected = validate_frame("charges", record_path(path))
    pd.testing.assert_frame_equal(FilesSource(tmp_path).charges(), expected, check_exact=True)
    charges = variants(demo_charges)
    charges[11]["amount"] = "12.00"
    charges[20]["created"] = None
    write(tmp_path, charges)
    with pytest.raises(InputErrors) as caught:
        FilesSource(tmp_path).charges()
    named = {(e.file, e.row, e.column) for e in caught.value.errors}
    assert named == {("charges.jsonl", 12, "amount"), ("charges.jsonl", 21, "created")}
    charges = variants(demo_charges)
    charges[2]["customer"] = {"id": "cus_expanded"}
    write(tmp_path, charges)
    assert FilesSource(tmp_path).charges().loc[2, "customer_id"] == "cus_expanded"
    write(tmp_path, [{**demo_charges[0], "id": "ch_1 "}])
    with pytest.raises(InputError) as one:
        FilesSource(tmp_path).charges()
    assert (one.value.row, one.value.column) == (1, "id")
