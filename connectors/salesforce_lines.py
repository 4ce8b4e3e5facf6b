"""Contract lines from the Salesforce records the live connector stored (no I/O).

The objects follow configs/fields.yaml's `contract_lines` preset: standard `Order` + `OrderItem`
(default) or CPQ's `SBQQ__Subscription__c`; connectors/line_mapping.py maps them exactly as
for the files source, so a live read and an export of the same org give the same lines. A bad
record (a null UnitPrice or Quantity on an Activated order's item, say) is an InputError naming
the object, the record id and the Salesforce field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from revops.config import FieldMapping
from revops.connectors.line_mapping import cpq_lines, order_lines, with_order_currency
from revops.connectors.salesforce_mapping import records_frame
from revops.errors import InputError, InputErrors
from revops.frames import SourceLocation, empty_frame, validate_frame

Records = list[dict[str, Any]]


def line_objects(mapping: FieldMapping) -> tuple[str, ...]:
    """The sObjects the configured preset reads lines from (none for `none`)."""
    return {
        "orders": ("Order", "OrderItem"),
        "cpq": ("SBQQ__Subscription__c",),
    }.get(mapping.contract_lines, ())


def contract_lines_from_records(
    records: Mapping[str, Records], mapping: FieldMapping, file: str
) -> pd.DataFrame:
    """Stored records of `line_objects(mapping)` -> validated canonical `contract_lines`."""
    objects = line_objects(mapping)
    if not objects:
        return empty_frame("contract_lines")
    if objects == ("Order", "OrderItem"):
        orders = records["Order"]
        items = with_order_currency(records["OrderItem"], orders, mapping)
        order_frame = _named(
            "Order", orders, lambda: records_frame("Order", orders, mapping, file=file)
        )
        sobject, named = "OrderItem", items

        def build() -> pd.DataFrame:
            item_frame = records_frame("OrderItem", items, mapping, file=file)
            return order_lines(order_frame, item_frame, mapping, range(1, len(items) + 1), file)
    else:
        sobject, named = "SBQQ__Subscription__c", records["SBQQ__Subscription__c"]

        def build() -> pd.DataFrame:
            frame = records_frame(sobject, named, mapping, file=file)
            return cpq_lines(frame, mapping, range(1, len(named) + 1), file)

    frame = _named(sobject, named, build)
    columns = {
        {"unit_price": "unit_price_minor", "line_quantity": "quantity"}.get(c, c): s.field
        for c, s in mapping.for_object(sobject).items()
    }
    # The frame keeps the records' positions as its index (items of inactive orders dropped).
    location = SourceLocation(file=file, columns=columns, rows=lambda i: int(i) + 1)
    return _named(sobject, named, lambda: validate_frame("contract_lines", frame, location))


def _named(sobject: str, records: Records, build: Any) -> Any:
    try:
        return build()
    except InputError as exc:
        raise naming_records(exc, sobject, records) from None


def naming_records(exc: InputError, sobject: str, records: Records) -> InputError:
    """The same error with each bad row named by its Salesforce record (what a user can open)."""
    errors = exc.errors if isinstance(exc, InputErrors) else [exc]
    named = [
        InputError(
            e.reason
            + (
                f" ({sobject} {records[e.row - 1].get('Id')})"
                if e.row is not None and 0 < e.row <= len(records)
                else ""
            ),
            file=e.file,
            row=e.row,
            column=e.column,
        )
        for e in errors
    ]
    return named[0] if len(named) == 1 else InputErrors(named)
