"""The Exceptions sheet's data rows as SpreadsheetML, built a column at a time.

openpyxl makes a Python cell object per value and writes it through lxml (about 20 us a
cell: 6.3 s of a 1M-line run's 6,770 findings x 23 columns). Here each column becomes its
cells' XML with pandas string operations, and the rows are placed into the sheet openpyxl
saved with its header, styles and layout (`with_rows`). What a reader gets is what openpyxl
wrote: text as inline strings (never a formula: a value `=HYPERLINK(...)` stays that text),
dates as serial days with the sheet's date style, money exact in major units with the
currency's number format, ids opening their record through a hyperlink relationship.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from openpyxl.utils import get_column_letter

from revops.money import exponent

# Characters XML 1.0 cannot hold (openpyxl refuses them with IllegalCharacterError, which
# failed the whole publish), and lone surrogates UTF-8 cannot: shown as U+FFFD so one CRM
# name cannot stop a run.
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_EXCEL_EPOCH = pd.Timestamp("1899-12-30")
_HYPERLINK_TYPE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink"
# What element text escapes ("&" first; a reader turns a raw carriage return into a line
# feed, as a reference it stays), and what an attribute value escapes besides (as
# xml.sax.saxutils.quoteattr).
_TEXT_ENTITIES = [("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;")]
_ATTRIBUTE_ENTITIES = [*_TEXT_ENTITIES, ('"', "&quot;"), ("\n", "&#10;"), ("\t", "&#9;")]
_RELS_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


@dataclass(frozen=True)
class Column:
    """One column of the sheet: its values, how they are written, its style and links.

    kind: "text" (inline string), "date" (serial day), "money" (minor units shown in major
    units of `currencies`), "number" (as is). `links` holds each row's URL or None.
    """

    values: pd.Series
    kind: str
    style: int | None = None
    links: pd.Series | None = None
    link_style: int | None = None
    currencies: pd.Series | None = None
    money_styles: dict[int, int] = field(default_factory=dict)


def column_letters(count: int) -> list[str]:
    """A, B, ..., Z, AA, ... for the first `count` columns."""
    return [get_column_letter(number) for number in range(1, count + 1)]


def sheet_rows(columns: list[Column], first_row: int = 2) -> tuple[str, list[tuple[str, str]]]:
    """The `<row>` elements of `columns` (rows numbered from `first_row`), and the
    hyperlinks as (cell reference, URL) in row then column order."""
    count = len(columns[0].values) if columns else 0
    numbers = pd.Series(np.arange(first_row, first_row + count).astype(str), dtype=object)
    cells = pd.Series([""] * count, dtype=object)
    links: list[pd.DataFrame] = []
    for position, (letter, column) in enumerate(
        zip(column_letters(len(columns)), columns, strict=True)
    ):
        ref = letter + numbers
        xml, linked = _cells(column, ref)
        cells = cells + xml
        if linked is not None:
            links.append(
                pd.DataFrame(
                    {
                        "row": linked["ref"].index.to_numpy(),
                        "col": position,
                        "ref": linked["ref"].to_numpy(),
                        "url": linked["url"].to_numpy(),
                    }
                )
            )
    rows = '<row r="' + numbers + '">' + cells + "</row>"
    hyperlinks: list[tuple[str, str]] = []
    if links:
        found = pd.concat(links).sort_values(["row", "col"], kind="stable")
        hyperlinks = list(zip(found["ref"], found["url"], strict=True))
    return "".join(rows.tolist()), hyperlinks


def _cells(column: Column, ref: pd.Series) -> tuple[pd.Series, dict[str, pd.Series] | None]:
    values = column.values.reset_index(drop=True)
    if column.kind == "text":
        return _text_cells(values, ref, column)
    if column.kind == "date":
        stamps = pd.to_datetime(values, errors="raise").dt.normalize()
        present = stamps.notna().to_numpy()
        days = (stamps[present] - _EXCEL_EPOCH).dt.days.astype("int64").astype(str)
        return _numeric_cells(ref, present, days, column.style), None
    present = values.notna().to_numpy()
    if column.kind == "money":
        currencies = column.currencies.reset_index(drop=True)[present]
        major = _major_text(values[present].astype("int64"), currencies)
        per_currency = {cur: column.money_styles[exponent(cur)] for cur in currencies.unique()}
        styles = currencies.map(per_currency)
        return _numeric_cells(ref, present, major, None, styles), None
    return _numeric_cells(ref, present, _number_text(values[present]), column.style), None


def _text_cells(
    values: pd.Series, ref: pd.Series, column: Column
) -> tuple[pd.Series, dict[str, pd.Series] | None]:
    # Object dtype: Arrow-backed strings cannot hold a lone surrogate, which Python's json
    # reads from a "\ud800" escape.
    objects = pd.Series(values.to_numpy(dtype=object), dtype=object)
    present = (objects.notna() & (objects != "")).to_numpy()
    text = objects[present]
    if pd.api.types.infer_dtype(text, skipna=True) not in ("string", "empty"):
        text = text.map(str)
    cleaned = text.str.replace(_ILLEGAL, "\ufffd", regex=True)
    escaped = _escaped(cleaned, _TEXT_ENTITIES)
    # openpyxl keeps leading and trailing blanks the same way.
    space = np.where(cleaned != cleaned.str.strip(), ' xml:space="preserve"', "")
    style = pd.Series("" if column.style is None else f' s="{column.style}"', index=cleaned.index)
    linked = None
    if column.links is not None:
        urls = column.links.reset_index(drop=True)[present]
        has_link = (urls.notna() & (urls.astype(str) != "")).to_numpy()
        style = style.where(~has_link, f' s="{column.link_style}"')
        linked = {"ref": ref[present][has_link], "url": urls[has_link].astype(str)}
    xml = pd.Series([""] * len(values), dtype=object)
    xml[present] = (
        '<c r="'
        + ref[present]
        + '"'
        + style
        + ' t="inlineStr"><is><t'
        + space
        + ">"
        + escaped
        + "</t></is></c>"
    ).to_numpy()
    return xml, linked


def _numeric_cells(
    ref: pd.Series,
    present: np.ndarray,
    text: pd.Series,
    style: int | None,
    styles: pd.Series | None = None,
) -> pd.Series:
    xml = pd.Series([""] * len(ref), dtype=object)
    if styles is not None:
        attribute = (' s="' + styles.astype(str) + '"').to_numpy()
    else:
        attribute = "" if style is None else f' s="{style}"'
    text = text.to_numpy().astype(object)
    start = '<c r="' + ref[present].to_numpy() + '"' + attribute
    xml[present] = start + ' t="n"><v>' + text + "</v></c>"
    return xml


def _major_text(minor: pd.Series, currencies: pd.Series) -> pd.Series:
    """Minor units as exact decimal text in major units, trailing zeros dropped: 112700 USD
    "1127", 1120 USD "11.2", -5 KWD "-0.005" (what openpyxl wrote for the same Decimal)."""
    digits = currencies.map({cur: exponent(cur) for cur in currencies.unique()}).to_numpy()
    amounts = minor.to_numpy()
    whole, part = np.divmod(np.abs(amounts), 10 ** digits.astype("int64"))
    fraction = pd.Series(part.astype(str), dtype=object)
    for places in np.unique(digits):
        at = digits == places
        fraction[at] = fraction[at].str.zfill(int(places)).str.rstrip("0")
    sign = np.where(amounts < 0, "-", "").astype(object)
    dot = np.where(fraction != "", ".", "").astype(object)
    return pd.Series(sign + whole.astype(str).astype(object) + dot + fraction.to_numpy())


def _number_text(values: pd.Series) -> pd.Series:
    """Numbers as openpyxl writes them: integers whole, others to 16 significant digits."""
    numbers = pd.to_numeric(values)
    as_float = numbers.astype("float64").to_numpy()
    if np.all(np.mod(as_float, 1) == 0) and np.all(np.abs(as_float) < 2**53):
        return pd.Series(as_float.astype("int64").astype(str), dtype=object)
    return pd.Series(np.char.mod("%.16g", as_float), dtype=object)


def with_rows(book: bytes, sheet: str, rows: str, hyperlinks: list[tuple[str, str]]) -> bytes:
    """The saved workbook `book` with `rows` placed after the header row of its part
    `sheet` (e.g. xl/worksheets/sheet2.xml) and its `hyperlinks` as external relationships.
    """
    source = zipfile.ZipFile(io.BytesIO(book))
    rels = sheet.replace("worksheets/", "worksheets/_rels/") + ".rels"
    names = source.namelist()
    if sheet not in names or rels in names:
        raise ValueError(f"{sheet}: not a sheet saved without hyperlinks")
    xml = source.read(sheet).decode("utf-8")
    if xml.count("</sheetData>") != 1:
        raise ValueError(f"{sheet}: no sheetData")
    xml = xml.replace("</sheetData>", rows + "</sheetData>")
    if hyperlinks:
        # Schema order: hyperlinks follow the autoFilter and come before pageMargins.
        anchor = "<pageMargins" if "<pageMargins" in xml else "</worksheet>"
        refs = pd.Series([ref for ref, _ in hyperlinks], dtype=object)
        numbers = pd.Series(np.arange(1, len(hyperlinks) + 1).astype(str), dtype=object)
        listed = "".join(('<hyperlink ref="' + refs + '" r:id="rId' + numbers + '"/>').tolist())
        block = f'<hyperlinks xmlns:r="{_R_NS}">{listed}</hyperlinks>'
        xml = xml.replace(anchor, block + anchor, 1)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = xml.encode("utf-8") if info.filename == sheet else source.read(info)
            target.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
        if hyperlinks:
            target.writestr(rels, _relationships(hyperlinks), compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _relationships(hyperlinks: list[tuple[str, str]]) -> str:
    urls = pd.Series([url for _, url in hyperlinks], dtype=object)
    urls = _escaped(urls.str.replace(_ILLEGAL, "", regex=True), _ATTRIBUTE_ENTITIES)
    numbers = pd.Series(np.arange(1, len(hyperlinks) + 1).astype(str), dtype=object)
    listed = (
        f'<Relationship Type="{_HYPERLINK_TYPE}" Target="'
        + urls
        + '" TargetMode="External" Id="rId'
        + numbers
        + '"/>'
    )
    return f'<Relationships xmlns="{_RELS_NS}">{"".join(listed.tolist())}</Relationships>'


def _escaped(text: pd.Series, entities: list[tuple[str, str]]) -> pd.Series:
    for raw, entity in entities:
        text = text.str.replace(raw, entity, regex=False)
    return text
