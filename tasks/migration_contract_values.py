"""Plan migrations, the CRM side: a contract's current values of the fields a plan row sets,
as Salesforce holds them (the dry run's `crm_before`, what verify and rollback compare). Pure."""

from __future__ import annotations

import pandas as pd

from revops.config import FieldMapping
from revops.money import minor_to_major
from revops.tasks.migration_plan import canonical_json


def contract_values(
    contracts: pd.DataFrame,
    contract_id: str | None,
    fields: dict[str, str],
    mapping: FieldMapping | None,
) -> str | None:
    """The contract's current values of `fields` as Salesforce holds them, as JSON.

    Read from the canonical contracts frame through configs/fields.yaml; a field the frame
    does not carry maps to null (it cannot be verified or restored from here).
    """
    if not fields or not contract_id:
        return None
    match = contracts[contracts["contract_id"] == contract_id] if len(contracts) else contracts
    record = match.iloc[0] if len(match) else None
    values = {name: _contract_field(record, name, mapping) for name in sorted(fields)}
    return canonical_json(values)


def _contract_field(
    record: pd.Series | None, name: str, mapping: FieldMapping | None
) -> str | None:
    if record is None or mapping is None:
        return None
    canonical = next(
        (col for col, spec in mapping.for_object("Contract").items() if spec.field == name), None
    )
    if canonical == "unit_price":
        value = record.get("unit_price_minor")
        return None if pd.isna(value) else str(minor_to_major(int(value), record["currency"]))
    if canonical == "billing_frequency":
        value = record.get("billing_frequency")
        picklist = [k for k, v in mapping.billing_frequency_values.items() if v == value]
        return picklist[0] if picklist else None
    if canonical is None or canonical not in record.index:
        return None
    value = record[canonical]
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return str(value)
