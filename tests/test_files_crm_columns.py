"""The CRM CSVs of an export read column-wise (pyarrow's CSV reader, vectorised mapping) give
exactly the frames of the row-by-row reader, which still reads whatever the column-wise read
cannot vouch for (a value spanning lines, here)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from revops.config import field_mapping
from revops.connectors.demo import DemoSource
from revops.connectors.files import FilesSource
from revops.connectors.files_read import _arrow_cells, _one_row_a_line, read_csv_frame
from revops.connectors.line_mapping import with_order_currency, with_order_currency_frame
from revops.connectors.salesforce_mapping import canonical_header, records_frame
from revops.frames import fingerprint
from tests.builders import export_demo

CRM_FILES = ("Account.csv", "Contract.csv", "Case.csv", "Opportunity.csv", "User.csv")
READS = ("accounts", "contracts", "cases", "opportunities", "users", "contract_lines")


@pytest.fixture(scope="module")
def export(demo_source: DemoSource, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_demo(demo_source, tmp_path_factory.mktemp("crm"))


def spanning_lines(export: Path, folder: Path) -> Path:
    """The export's CSVs with a Description column (ignored by the mapping) whose first value
    spans two lines, as Data Loader writes a multi-line description."""
    folder.mkdir()
    for path in export.glob("*.csv"):
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        table["Description"] = ["first line\nsecond line"] + [""] * (len(table) - 1)
        table.to_csv(folder / path.name, index=False)
    return folder


def test_the_crm_csvs_of_the_demo_export_are_read_column_wise(export: Path) -> None:
    for name in CRM_FILES:
        data = (export / name).read_bytes()
        layout = _one_row_a_line(data)
        assert layout is not None, name
        assert _arrow_cells(data, layout) is not None, name


def test_column_wise_frames_are_those_of_the_row_reader(export: Path, tmp_path: Path) -> None:
    slow = spanning_lines(export, tmp_path / "slow")
    assert all(_one_row_a_line((slow / name).read_bytes()) is None for name in CRM_FILES)
    fast_source, slow_source = FilesSource(export), FilesSource(slow)
    for read in READS:
        fast, expected = getattr(fast_source, read)(), getattr(slow_source, read)()
        assert len(fast), read
        pd.testing.assert_frame_equal(fast, expected, check_exact=True, obj=read)
        assert fingerprint(fast) == fingerprint(expected), read
    # Rows after the spanning value end a line later: errors still name each one's line.
    _, _, fast_rows, fast_lines = read_csv_frame(export / "Contract.csv")
    _, _, slow_rows, slow_lines = read_csv_frame(slow / "Contract.csv")
    assert (fast_rows == slow_rows).all() and (fast_lines[1:] + 1 == slow_lines[1:]).all()


def test_a_frame_of_cells_maps_as_its_records_do(export: Path) -> None:
    """The files source hands records_frame a frame of text; the live connector, records."""
    mapping = field_mapping()
    for name in CRM_FILES:
        sobject = name.removesuffix(".csv")
        header, cells, rows, lines = read_csv_frame(export / name)
        cells.columns = canonical_header(sobject, header, mapping)
        records = cells.to_dict("records")
        pd.testing.assert_frame_equal(
            records_frame(sobject, cells, mapping, rows=rows, lines=lines),
            records_frame(sobject, records, mapping, rows=rows, lines=lines),
            check_exact=True,
            obj=name,
        )


@pytest.mark.parametrize("name", ["Case.csv", "Opportunity.csv", "User.csv"])
def test_a_header_alone_maps_as_no_records(export: Path, tmp_path: Path, name: str) -> None:
    header = (export / name).read_text().splitlines()[0]
    (tmp_path / name).write_text(header + "\n")
    sobject = name.removesuffix(".csv")
    read = {"Case": "cases", "Opportunity": "opportunities", "User": "users"}[sobject]
    expected = records_frame(sobject, [], field_mapping())
    pd.testing.assert_frame_equal(getattr(FilesSource(tmp_path), read)(), expected)


@pytest.mark.parametrize("with_column", [True, False])
def test_order_currency_fills_items_as_the_record_rule_does(with_column: bool) -> None:
    """Items without a currency take their order's (the last order of an id), column-wise as
    record by record; an item naming no known order, or an order without one, keeps none."""
    mapping = field_mapping()
    orders = pd.DataFrame(
        {"Id": ["801A", "801B", "801A", "801C"], "CurrencyIsoCode": ["EUR", "JPY", "GBP", ""]},
        dtype="str",
    )
    items = pd.DataFrame(
        {
            "Id": ["802A", "802B", "802C", "802D", "802E"],
            "OrderId": ["801A", "801B", "801C", "801Z", "801B"],
            "CurrencyIsoCode": ["", "USD", "", "", " "],
        },
        dtype="str",
    )
    if not with_column:
        items = items.drop(columns="CurrencyIsoCode")
    got = with_order_currency_frame(items, orders, mapping)
    records = with_order_currency(items.to_dict("records"), orders.to_dict("records"), mapping)
    expected = pd.DataFrame.from_records(records).astype("str")
    columns = list(expected.columns)
    pd.testing.assert_frame_equal(got[columns].astype("str").fillna(""), expected.fillna(""))
    assert got["CurrencyIsoCode"].tolist()[0] == "GBP"
