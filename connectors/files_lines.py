"""Contract lines of the files source: Order + OrderItem exports, or CPQ subscriptions.

Which objects are read is the `contract_lines` preset of configs/fields.yaml; every bad value
is named by file, row and column like the other CSVs (docs/design.md, "The `files` source").
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from revops.config import FieldMapping
from revops.connectors.files_read import read_csv_frame
from revops.connectors.line_mapping import cpq_lines, order_lines, with_order_currency_frame
from revops.connectors.salesforce_mapping import check_fields, records_frame
from revops.frames import SourceLocation, empty_frame, validate_frame


def read_contract_lines(folder: Path, mapping: FieldMapping) -> pd.DataFrame:
    """Canonical contract_lines from Order.csv + OrderItem.csv, or SBQQ__Subscription__c.csv
    with the CPQ preset (empty when the preset is "none" or a file is absent)."""
    preset = mapping.contract_lines
    if preset == "none":
        return empty_frame("contract_lines")
    objects = ("SBQQ__Subscription__c",) if preset == "cpq" else ("Order", "OrderItem")
    if not all((folder / f"{name}.csv").is_file() for name in objects):
        return empty_frame("contract_lines")
    parsed = {}
    for sobject in objects:
        name = f"{sobject}.csv"
        header, values, rows, lines = read_csv_frame(folder / name)
        check_fields(sobject, header, mapping, file=name)
        parsed[sobject] = (values, rows.tolist(), lines.tolist())
    if preset == "orders":
        orders, items = parsed["Order"], parsed["OrderItem"]
        item_records = with_order_currency_frame(items[0], orders[0], mapping)
        order_frame = records_frame(
            "Order", orders[0], mapping, rows=orders[1], file="Order.csv", lines=orders[2]
        )
        item_frame = records_frame(
            "OrderItem",
            item_records,
            mapping,
            rows=items[1],
            file="OrderItem.csv",
            lines=items[2],
        )
        frame = order_lines(order_frame, item_frame, mapping, items[1])
        name, sobject, rows = "OrderItem.csv", "OrderItem", items[1]
    else:
        records, rows, lines = parsed["SBQQ__Subscription__c"]
        name, sobject = "SBQQ__Subscription__c.csv", "SBQQ__Subscription__c"
        subs = records_frame(sobject, records, mapping, rows=rows, file=name, lines=lines)
        frame = cpq_lines(subs, mapping, rows)
    columns = {
        {"unit_price": "unit_price_minor", "line_quantity": "quantity"}.get(c, c): s.field
        for c, s in mapping.for_object(sobject).items()
    }
    # The frame keeps the parsed rows' index labels (items of inactive orders dropped).
    location = SourceLocation(
        file=name, columns=columns, header_lines=1, rows=lambda i: rows[int(i)]
    )
    return validate_frame("contract_lines", frame, location)
