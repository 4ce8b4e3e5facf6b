"""The Exceptions sheet's rows written a column at a time (tasks/outputs_sheet.py) read back
as openpyxl writes the same values cell by cell: text, dates, exact money, links."""

from __future__ import annotations

import io
from decimal import Decimal

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell

from revops.tasks.outputs_sheet import Column, column_letters, sheet_rows, with_rows


def _book(columns: list[Column], header: list[str]) -> tuple[Workbook, object]:
    """A workbook of a Summary sheet and a sheet `Rows` holding only `header`."""
    book = Workbook(write_only=True)
    book.create_sheet("Summary").append(["s"])
    sheet = book.create_sheet("Rows")
    sheet.append(header)
    return book, sheet


def _written(columns: list[Column], book: Workbook) -> object:
    rows, links = sheet_rows(columns)
    saved = io.BytesIO()
    book.save(saved)
    whole = with_rows(saved.getvalue(), "xl/worksheets/sheet2.xml", rows, links)
    return load_workbook(io.BytesIO(whole))["Rows"]


def _style(sheet: object, **style: str) -> int:
    cell = WriteOnlyCell(sheet)
    for name, value in style.items():
        setattr(cell, name, value)
    return cell.style_id


def _openpyxl_text(values: list[str]) -> list[object]:
    """The same strings written by openpyxl, cell by cell, as a reader loads them."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("x")
    for value in values:
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"
        sheet.append([cell])
    saved = io.BytesIO()
    book.save(saved)
    loaded = load_workbook(io.BytesIO(saved.getvalue()))["x"]
    return [row[0].value for row in loaded.iter_rows()] if values else []


# Text a CRM or Stripe field may hold: XML's specials, formulas, blanks at either end, line
# ends, any plane of Unicode; characters XML cannot hold are tested apart.
_LEGAL = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters="".join(map(chr, [*range(0, 9), 11, 12, *range(14, 32)])) + "\ufffe\uffff",
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(_LEGAL, min_size=1, max_size=12), min_size=1, max_size=8))
def test_text_reads_back_as_openpyxl_writes_it(values: list[str]) -> None:
    book, _ = _book([], ["text"])
    sheet = _written([Column(pd.Series(values, dtype=object), "text")], book)
    loaded = [row[0].value for row in sheet.iter_rows(min_row=2)]
    assert loaded == _openpyxl_text(values)
    assert all(row[0].data_type == "s" for row in sheet.iter_rows(min_row=2))


def test_characters_xml_cannot_hold_become_replacement_marks() -> None:
    # openpyxl raises IllegalCharacterError for these, which stopped the whole publish.
    values = ["Acme\x07 GmbH", "nul\x00", "lone \ud800 surrogate", "=1+1", "a & <b>", None, ""]
    book, _ = _book([], ["text"])
    sheet = _written([Column(pd.Series(values, dtype=object), "text")], book)
    loaded = [sheet.cell(row=r, column=1).value for r in range(2, 2 + len(values))]
    assert loaded == [
        "Acme\ufffd GmbH",
        "nul\ufffd",
        "lone \ufffd surrogate",
        "=1+1",
        "a & <b>",
        None,
        None,
    ]
    assert sheet.cell(row=5, column=1).data_type == "s"  # text, never a formula


def test_money_is_exact_in_major_units_with_each_currencys_format() -> None:
    minor = pd.Series([112700, 1120, -5, 123, None, 123456789012345678], dtype="Int64")
    currencies = pd.Series(["USD", "USD", "KWD", "JPY", "USD", "USD"])
    book, sheet = _book([], ["amount"])
    styles = {
        places: _style(sheet, number_format="#,##0" + ("." + "0" * places if places else ""))
        for places in (0, 2, 3)
    }
    column = Column(minor, "money", currencies=currencies, money_styles=styles)
    loaded = _written([column], book)
    cells = [loaded.cell(row=r, column=1) for r in range(2, 8)]
    assert [None if c.value is None else Decimal(str(c.value)) for c in cells[:5]] == [
        Decimal("1127"),
        Decimal("11.2"),
        Decimal("-0.005"),
        Decimal("123"),
        None,
    ]
    assert [c.number_format for c in cells[:4]] == ["#,##0.00", "#,##0.00", "#,##0.000", "#,##0"]
    rows, _ = sheet_rows([column])
    # The XML holds the exact decimal even past a double's 16 digits.
    assert "<v>1234567890123456.78</v>" in rows


def test_dates_numbers_and_links_read_back() -> None:
    book, sheet = _book([], ["id", "day", "minor"])
    link_style = _style(sheet, style="Hyperlink")
    date_style = _style(sheet, number_format="yyyy-mm-dd")
    ids = pd.Series(["in_1", "in_2", None, "cus_&1"], dtype=object)
    urls = pd.Series(
        [
            "https://x.example/in_1",
            None,
            "https://x.example/gone",
            'https://x.example/?a=1&b=<2>&c="3"',
        ]
    )
    stamps = ["2026-10-14", None, "2024-02-29T13:00", "1900-03-01"]
    days = pd.Series(pd.to_datetime(stamps, format="ISO8601"))
    minor = pd.Series([112700, None, -3, 0], dtype="Int64")
    columns = [
        Column(ids, "text", links=urls, link_style=link_style),
        Column(days, "date", style=date_style),
        Column(minor, "number"),
    ]
    loaded = _written(columns, book)
    assert [loaded.cell(row=r, column=1).value for r in range(2, 6)] == [
        "in_1",
        "in_2",
        None,
        "cus_&1",
    ]
    assert [
        None
        if loaded.cell(row=r, column=2).value is None
        else loaded.cell(row=r, column=2).value.date().isoformat()
        for r in range(2, 6)
    ] == ["2026-10-14", None, "2024-02-29", "1900-03-01"]
    assert loaded.cell(row=2, column=2).number_format == "yyyy-mm-dd"
    assert [loaded.cell(row=r, column=3).value for r in range(2, 6)] == [112700, None, -3, 0]
    # A link only where the cell has a value: in_2 has no URL, the empty id none either.
    targets = {
        r: loaded.cell(row=r, column=1).hyperlink.target
        for r in range(2, 6)
        if loaded.cell(row=r, column=1).hyperlink is not None
    }
    assert targets == {2: "https://x.example/in_1", 5: 'https://x.example/?a=1&b=<2>&c="3"'}
    assert loaded.cell(row=2, column=1).style == "Hyperlink"
    assert loaded.cell(row=3, column=1).style == "Normal"


def test_column_letters_run_past_z() -> None:
    letters = column_letters(703)
    assert letters[:3] == ["A", "B", "C"]
    assert letters[25:28] == ["Z", "AA", "AB"]
    assert letters[701:] == ["ZZ", "AAA"]
