"""invoices.jsonl read column-wise (connectors.stripe_mapping_arrow) gives exactly the frames of
the record-by-record mapping (stripe_mapping, stripe_credits), and hands back to it (Unsure)
whatever it cannot vouch for, so every bad value is still named by row and Stripe field.

Payloads are the recorded Stripe API invoices of tests/fixtures/stripe (both shapes,
localstripe's, JPY, void) and variants of them with fields of the Stripe Invoice and
InvoiceLineItem objects (API reference: customer null, pretax_credit_amounts,
total_pretax_credit_amounts, quantity_decimal, unit_amount_excluding_tax, tax_amounts,
status_transitions, lines.has_more with total_count).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revops.connectors import stripe_credits, stripe_mapping
from revops.connectors.demo import DemoSource
from revops.connectors.files import FilesSource
from revops.connectors.files_export import write_export
from revops.connectors.files_read import _one_row_a_line, read_csv, read_csv_frame, read_jsonl
from revops.connectors.stripe_mapping_arrow import (
    Unsure,
    charges_giving_back,
    invoice_blocks,
    join_blocks,
    read_invoice_block,
    read_invoice_texts,
    read_invoices_jsonl,
)
from revops.errors import InputError
from revops.frames import validate_frame
from tests.builders import export_demo
from tests.test_files_source import SHAPES, demo_frames

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
INVOICES = (
    "invoice_current_inclusive_proration",
    "invoice_jpy",
    "invoice_legacy_coupon_tax",
    "invoice_localstripe_plan",
    "invoice_void",
)


def fixture(name: str) -> dict[str, Any]:
    record = json.loads((FIXTURES / f"{name}.json").read_text())
    if isinstance(record.get("customer"), dict):  # the export writes ids, not expansions
        record["customer"] = record["customer"]["id"]
    return record


def write(folder: Path, records: list[dict[str, Any]], blank_after: int | None = None) -> Path:
    path = folder / "invoices.jsonl"
    lines = [json.dumps(r) for r in records]
    if blank_after is not None:
        lines.insert(blank_after, "")
    path.write_text("\n".join(lines) + "\n")
    return path


def record_path(path: Path) -> dict[str, Any]:
    """The record-by-record mapping of a file, as the fast read returns it."""
    records, rows = read_jsonl(path)
    invoices, lines = stripe_mapping.invoices_frames(records, rows=rows, file=path.name)
    return {
        "invoices": invoices,
        "invoice_lines": lines,
        "credit_grants": stripe_credits.credit_grants_frame(records, rows=rows, file=path.name),
        "line_rows": np.array(stripe_mapping.invoice_line_rows(records, rows)),
    }


def assert_same(fast: dict[str, Any], slow: dict[str, Any]) -> None:
    for name in ("invoices", "invoice_lines", "credit_grants"):
        pd.testing.assert_frame_equal(fast[name], slow[name], check_exact=True)
    assert fast["line_rows"].tolist() == slow["line_rows"].tolist()


@pytest.mark.parametrize("shape", SHAPES)
def test_the_demo_export_reads_the_same_both_ways(
    shape: str, demo_source: DemoSource, tmp_path: Path
) -> None:
    frames = demo_frames(demo_source)
    invoices = {name: frames[name] for name in ("invoices", "invoice_lines")}
    write_export(tmp_path, **invoices, invoice_shape=shape)  # type: ignore[arg-type]
    path = tmp_path / "invoices.jsonl"
    fast = read_invoices_jsonl(path)
    assert len(fast["invoice_lines"]) > 1000
    assert_same(fast, record_path(path))


def grant(amount: int, transaction: str) -> dict[str, Any]:
    return {
        "amount": amount,
        "credit_balance_transaction": transaction,
        "type": "credit_balance_transaction",
    }


def edge_cases() -> list[dict[str, Any]]:
    """Every recorded invoice, and variants of the fields the mapping reads."""
    records = [fixture(name) for name in INVOICES]
    current, legacy = records[0], records[2]
    one_off = copy.deepcopy(current)
    one_off.update(id="in_oneoff", customer=None, customer_account="acct_1")
    one_off["status_transitions"] = {"finalized_at": 1763164900, "voided_at": None}
    line = one_off["lines"]["data"][0]
    line["quantity_decimal"] = "2.5"
    line["metadata"] = {"salesforce_contract_id": " 800Ab000001XyZ1 ", "salesforce_line_id": ""}
    line["pretax_credit_amounts"] = [grant(4000, "cbtxn_1"), {"amount": 500, "type": "discount"}]
    line["parent"]["type"] = "invoice_item_details"
    line["parent"]["invoice_item_details"] = {"invoice_item": "ii_1", "proration": True,
                                              "subscription": None}  # fmt: skip
    whole = copy.deepcopy(legacy)
    whole["id"] = "in_whole_grant"
    whole["total_pretax_credit_amounts"] = [grant(700, "cbtxn_2")]
    whole["lines"].update(has_more=True, total_count=len(whole["lines"]["data"]))
    taxed = copy.deepcopy(legacy)
    taxed["id"] = "in_taxed"
    taxed_line = taxed["lines"]["data"][0]
    taxed_line["tax_amounts"] = [
        {"amount": 100, "inclusive": True},
        {"amount": 5, "inclusive": False},
    ]
    taxed_line["unit_amount_excluding_tax"] = "1234.5"
    taxed_line["parent"] = None  # null says no more than absent: still the older shape
    empty = copy.deepcopy(legacy)
    empty.update(id="in_empty", lines={"object": "list", "data": [], "has_more": False})
    return [*records, one_off, whole, taxed, empty]


def test_edge_cases_read_the_same_both_ways(tmp_path: Path) -> None:
    path = write(tmp_path, edge_cases())
    fast = read_invoices_jsonl(path)
    slow = record_path(path)
    assert_same(fast, slow)
    lines = fast["invoice_lines"].set_index("line_id")
    assert fast["credit_grants"]["credit_balance_transaction"].tolist() == ["cbtxn_1", "cbtxn_2"]
    assert lines["salesforce_contract_id"].str.len().max() == 18  # 15 -> 18 characters
    assert fast["invoices"]["customer_id"].isna().sum() == 1


def test_stored_payloads_read_the_same_as_a_file(tmp_path: Path) -> None:
    records = edge_cases()
    texts = [json.dumps(r, separators=(",", ":")) for r in records]
    assert_same(read_invoice_texts(texts), record_path(write(tmp_path, records)))


def legacy_variant(change: Any) -> list[dict[str, Any]]:
    record = fixture("invoice_legacy_coupon_tax")
    change(record)
    return [fixture("invoice_jpy"), record]


UNSURE = {
    "an expanded customer": lambda r: r.update(customer={"id": "cus_1", "object": "customer"}),
    "an amount written 100.0": lambda r: r.update(total=float(r["total"])),
    "a missing currency": lambda r: r.pop("currency"),
    "an unknown status": lambda r: r.update(status="settled"),
    "an id with a space": lambda r: r.update(id=r["id"] + " "),
    "milliseconds": lambda r: r.update(created=r["created"] * 1000),
    "an incomplete line page": lambda r: r["lines"].update(has_more=True, total_count=None),
    "a line without period": lambda r: r["lines"]["data"][0].pop("period"),
    "a bad quantity_decimal": lambda r: r["lines"]["data"][0].update(quantity_decimal="x"),
}


@pytest.mark.parametrize("case", UNSURE)
def test_what_the_fast_read_cannot_vouch_for_goes_record_by_record(
    case: str, tmp_path: Path
) -> None:
    path = write(tmp_path, legacy_variant(UNSURE[case]))
    with pytest.raises(Unsure):
        read_invoices_jsonl(path)
    try:
        slow = record_path(path)
    except InputError as error:  # the record path names the row and the field
        assert "row 2" in str(error)
        return
    source = FilesSource(tmp_path)
    pd.testing.assert_frame_equal(source.invoices()[0], slow["invoices"])


def test_a_blank_line_or_nan_leaves_the_rows_to_the_record_path(tmp_path: Path) -> None:
    path = write(tmp_path, edge_cases(), blank_after=2)
    with pytest.raises(Unsure):
        read_invoices_jsonl(path)
    invoices, _ = FilesSource(tmp_path).invoices()
    pd.testing.assert_frame_equal(invoices, record_path(path)["invoices"])
    path = write(tmp_path, edge_cases())
    path.write_text(re.sub(r'"total": -?\d+', '"total": NaN', path.read_text(), count=1))
    with pytest.raises(Unsure):
        read_invoices_jsonl(path)
    with pytest.raises(InputError, match="row 1, column total: is NaN or Infinity"):
        FilesSource(tmp_path).invoices()


CSV_CASES = {
    "plain": "account_id,date,metric,quantity\n001A,2026-01-01,active_seats,3\n",
    "blank rows counted": "a,b\n1,2\n\n , \n  \n3,4\n",
    "a truncated row": "a,b,c\n1,,3\n1,2\n",
    "a row too long": "a,b\n1,2,3\n",
    "quotes (rows may span lines)": 'a,b\n"1\n2",3\n4,5\n',
    "a header twice": "a,A\n1,2\n",
    "an empty header": ",\n1,2\n",
    "quoted values on one line": 'Id,Name\n001A,"Acme, Inc."\n"001B","say ""hi"""\n001C,""\n',
    "a quoted header and a BOM": '\ufeff"Id","Name"\n"001A","Acme"\n\n"",""\n',
    "Windows line ends": 'a,b\r\n1,"2,3"\r\n\r\n4,5\r\n',
    "a quote inside a value": 'a,b\n1,x"y\n2,3\n',
    "text after a closing quote": 'a,b\n"1"x,2\n',
    "a space after a closing quote": 'a,b\n"1" ,2\n',
    "an unclosed quote": 'a,b\n"1,2\n3,4\n',
    "a lone carriage return": "a,b\r1,2\r",
    "a carriage return in a quoted value": 'a,b\n"1\r\n2",3\n',
    "a quoted blank row": 'a,b\n1,2\n""\n3,4\n',
    "a NUL": "a,b\n1,\x002\n",
    "a short quoted row": 'a,b,c\n"1","2"\n',
    "empty lines skipped but counted": "a,b\n1,2\n\n\n3,4\n\n",
    "an empty first line": "\na,b\n1,2\n",
    "a row of empty values": 'a,b\n1,2\n,\n"",\n3,4',
}
# Files each line of which is one row: pandas reads them, not the row reader.
ONE_ROW_A_LINE = (
    "plain",
    "blank rows counted",
    "quoted values on one line",
    "a quoted header and a BOM",
    "Windows line ends",
    "a header twice",
    "an empty header",
    "empty lines skipped but counted",
    "a row of empty values",
)


@pytest.mark.parametrize("case", CSV_CASES)
def test_csv_read_by_pandas_gives_the_rows_and_errors_of_the_row_reader(
    case: str, tmp_path: Path
) -> None:
    path = tmp_path / "usage.csv"
    path.write_bytes(CSV_CASES[case].encode())
    assert (_one_row_a_line(path.read_bytes()) is not None) == (case in ONE_ROW_A_LINE)
    try:
        header, values, rows, lines = read_csv(path)
    except InputError as error:
        with pytest.raises(InputError) as raised:
            read_csv_frame(path)
        assert str(raised.value) == str(error)
        return
    fast = read_csv_frame(path)
    assert (fast[0], fast[2].tolist(), fast[3].tolist()) == (header, rows, lines)
    expected = pd.DataFrame(values, columns=header, dtype="str")
    pd.testing.assert_frame_equal(fast[1].astype("str"), expected)


# -- the invoices a window can bill (FilesSource.bearing_on) ---------------------------------


@pytest.fixture(scope="module")
def whole_export(demo_source: DemoSource, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_demo(demo_source, tmp_path_factory.mktemp("whole"))


def test_bearing_on_keeps_the_invoices_with_a_line_ending_then_or_later(
    whole_export: Path, tmp_path: Path
) -> None:
    earliest = date(2026, 9, 26)
    cutoff = pd.Timestamp(earliest, tz="UTC")
    every_invoice, every_line = FilesSource(whole_export).invoices()
    invoices, lines = FilesSource(whole_export).bearing_on(earliest).invoices()
    latest = every_line.groupby("invoice_id")["period_end"].max()
    bearing = set(latest.index[latest >= cutoff])
    assert set(invoices["invoice_id"]) == bearing and len(bearing) < len(every_invoice) / 3
    kept = every_line[every_line["invoice_id"].isin(bearing)].reset_index(drop=True)
    pd.testing.assert_frame_equal(lines, kept, check_exact=True)
    # The record-by-record read (a blank line makes the fast read hand over) keeps the same.
    slow = tmp_path / "slow"
    shutil.copytree(whole_export, slow)
    text = (slow / "invoices.jsonl").read_text()
    (slow / "invoices.jsonl").write_text(text.replace("\n", "\n\n", 1))
    slow_invoices, slow_lines = FilesSource(slow).bearing_on(earliest).invoices()
    pd.testing.assert_frame_equal(slow_invoices, invoices, check_exact=True)
    pd.testing.assert_frame_equal(slow_lines, lines, check_exact=True)
    grants = FilesSource(whole_export).bearing_on(earliest).money_given_back()["credit_grants"]
    assert set(grants["invoice_id"]) <= bearing


def test_a_bad_value_on_a_kept_invoice_names_its_row_in_the_file(
    whole_export: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "bad"
    shutil.copytree(whole_export, folder)
    path = folder / "invoices.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    row = len(records) - 3  # late in the file: an invoice of the window, not of the history
    records[row - 1]["currency"] = "usx"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(InputError) as caught:
        FilesSource(folder).bearing_on(date(2026, 9, 26)).invoices()
    assert caught.value.row == row and caught.value.file == "invoices.jsonl"


def test_reconciling_the_window_from_the_invoices_bearing_on_it_changes_nothing(
    whole_export: Path,
) -> None:
    from prefect.logging import disable_run_logger

    from revops.flows.params import ReconcileParams
    from revops.tasks.reconcile_tasks import extract_reconciliation_input
    from revops.tasks.reconciliation import reconcile

    params = ReconcileParams(source="files", input_dir=str(whole_export), as_of="2026-11-23")
    as_of, window, config = params.resolved_as_of(), params.window(), params.reconciliation_config()
    results = []
    for grace in (None, config.period_grace_days):
        with disable_run_logger():
            data, _ = extract_reconciliation_input.fn(
                params.sources(as_of, "sqlite://"), window, grace
            )
        results.append((len(data.invoice_lines), reconcile(data, window, as_of, config)))
    (all_lines, whole), (window_lines, windowed) = results
    assert window_lines < all_lines / 3
    pd.testing.assert_frame_equal(windowed.findings, whole.findings, check_exact=True)
    pd.testing.assert_frame_equal(windowed.matched, whole.matched, check_exact=True)
    counts = {k: v for k, v in whole.counts.items() if k != "invoice_lines_read"}
    assert {k: v for k, v in windowed.counts.items() if k != "invoice_lines_read"} == counts
    assert len(whole.findings) > 20


def test_refunds_read_from_the_charges_that_give_back_are_every_refund(
    whole_export: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "charges"
    shutil.copytree(whole_export, folder)
    path = folder / "charges.jsonl"
    charges = [json.loads(line) for line in path.read_text().splitlines()]
    # A charge refunded without its refund list (not expanded): one refund of the amount.
    charges[5].pop("refunds", None)
    charges[5]["amount_refunded"] = 250
    path.write_text("".join(json.dumps(c) + "\n" for c in charges))
    wanted = charges_giving_back(path)
    assert 6 in wanted and len(wanted) < len(charges) / 10
    records, rows = read_jsonl(path)
    every = stripe_credits.refunds_frame(records, rows=rows, file=path.name)
    read = FilesSource(folder).money_given_back()["refunds"]
    pd.testing.assert_frame_equal(read, validate_frame("refunds", every), check_exact=True)
    assert (read["amount_minor"] == 250).any() and len(read) >= 3
    # A charge without id is read too, so the mapping names its row.
    charges[9].pop("id")
    path.write_text("".join(json.dumps(c) + "\n" for c in charges))
    with pytest.raises(InputError) as caught:
        FilesSource(folder).money_given_back()
    assert caught.value.row == 10


@pytest.mark.parametrize("count", [1, 3, 7])
@pytest.mark.parametrize(
    "ending_from", [None, int(pd.Timestamp("2026-09-26", tz="UTC").timestamp())]
)
def test_blocks_read_apart_and_joined_are_the_whole_read(
    whole_export: Path, count: int, ending_from: int | None
) -> None:
    path = whole_export / "invoices.jsonl"
    blocks = invoice_blocks(path, count)
    assert len(blocks) == count and blocks[0].start == 0 and blocks[-1].end == path.stat().st_size
    joined = join_blocks([read_invoice_block(path, b, ending_from) for b in blocks])
    whole = read_invoices_jsonl(path, ending_from)
    assert_same(joined, whole)
    assert joined["invoice_rows"].tolist() == whole["invoice_rows"].tolist()
    assert joined["read"] == whole["read"]


def test_a_block_it_cannot_vouch_for_reads_the_file_whole(
    whole_export: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "blank"
    shutil.copytree(whole_export, folder)
    text = (folder / "invoices.jsonl").read_text()
    (folder / "invoices.jsonl").write_text(text.replace("\n", "\n\n", 1))
    files = FilesSource(folder)
    parts = [files.read_invoice_block(b) for b in files.invoice_blocks(3)]
    assert parts[0] is None and files.with_invoice_blocks(parts) is files
    invoices, _ = FilesSource(whole_export).invoices()
    pd.testing.assert_frame_equal(files.with_invoice_blocks(parts).invoices()[0], invoices)


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b"", False),
        (b'{"amount":NaN}', True),
        (b'{"amount":-Infinity}', True),
        (b'{"d":"NNaN"}', True),  # inside a string too: the record-by-record read decides
        (b'{"d":"Info Nation Inf Infinit nan"}', False),
        (b"Na", False),
    ],
)
def test_nan_and_infinity_are_found_anywhere(data: bytes, found: bool) -> None:
    from revops.connectors.stripe_mapping_arrow import _has_constant

    assert _has_constant(data) is found


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(
        st.sampled_from([b"NaN", b"Infinity", b"Inf", b"Na", b"N", b"I", b"\n", b"x", b'"']),
        max_size=40,
    ),
    piece=st.integers(min_value=1, max_value=9),
)
def test_the_scans_by_piece_see_what_a_scan_of_the_whole_sees(
    words: list[bytes], piece: int
) -> None:
    """Words cut across the pieces the scans compare at a time are still found, and every
    line feed is counted once."""
    from revops.connectors.stripe_mapping_arrow import _has_constant, _line_ends

    data = b"".join(words)
    assert _has_constant(data, piece) is (b"NaN" in data or b"Infinity" in data)
    assert _line_ends(data, piece) == data.count(b"\n")


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of a few lines, so a small file is parsed in many (file_batches); pyarrow's
    own block must still hold the largest object."""
    from revops.connectors import stripe_mapping_arrow

    monkeypatch.setattr(stripe_mapping_arrow, "_PARSE_BYTES", 60_000)
    monkeypatch.setattr(stripe_mapping_arrow, "_BLOCK_BYTES", 30_000)


def test_many_small_blocks_read_as_one(
    demo_source: DemoSource, tmp_path: Path, small_blocks: None
) -> None:
    frames = demo_frames(demo_source)
    write_export(tmp_path, invoices=frames["invoices"], invoice_lines=frames["invoice_lines"])
    path = tmp_path / "invoices.jsonl"
    assert path.stat().st_size > 10 * 60_000
    fast = read_invoices_jsonl(path)
    assert_same(fast, record_path(path))
    assert fast["invoice_rows"].tolist() == list(range(1, len(fast["invoices"]) + 1))


@pytest.mark.parametrize("flaw", ["a blank line", "NaN", "two objects on a line"])
def test_a_flaw_in_a_later_block_leaves_the_file_to_the_record_path(
    tmp_path: Path, small_blocks: None, flaw: str
) -> None:
    records = [dict(fixture(INVOICES[i % len(INVOICES)]), id=f"in_{i}") for i in range(400)]
    lines = [json.dumps(r) for r in records]
    if flaw == "a blank line":
        lines.insert(350, "")
    elif flaw == "NaN":
        lines[350] = re.sub(r'"total": -?\d+', '"total": NaN', lines[350], count=1)
    else:
        lines[350] = lines[350] + " " + lines[351]
        del lines[351]
    path = tmp_path / "invoices.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size * 350 / 400 > 3 * 60_000  # the flaw is blocks after the first
    with pytest.raises(Unsure):
        read_invoices_jsonl(path)
    with pytest.raises(Unsure):
        charges_giving_back(path)
