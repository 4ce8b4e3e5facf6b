"""Plan migrations, the plan file: parse a reviewed CSV or YAML plan, fingerprint it.

A plan moves accounts from one Stripe price to another (a price increase, a legacy plan
sunset, a frequency change) and optionally sets fields on each account's CRM contract. It is a
CSV or YAML file; every problem in it is reported at once, each with its row and column.

Pure: text in, a MigrationPlan out. The fingerprint (sha256 of the normalised rows) keys the
ledger, approvals and outputs of a plan. Resolving the plan against the book is
migration_resolve, pricing it migration_impact, its ledger status migration_status.

CSV columns (header row; `crm.<Field>` columns set that contract field):
    account_id, customer_id, subscription_id, from_price, to_price, when, proration_behavior,
    change_interval, contract_id, crm.Unit_Price__c, ...
YAML: a list of rows, or `{name, defaults, migrations: [rows]}`; a row may hold
`crm: {Unit_Price__c: "110.00"}` or flat `crm.Unit_Price__c` keys.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from revops.errors import InputError, InputErrors
from revops.tasks.migration_config import WHEN, MigrationConfig

COLUMNS = (
    "account_id",
    "customer_id",
    "subscription_id",
    "from_price",
    "to_price",
    "when",
    "proration_behavior",
    "change_interval",
    "contract_id",
)
CRM_PREFIX = "crm."
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class PlanRow:
    """One row of a plan as written (defaults applied); fields are None when absent or bad."""

    row: int
    line: int | None
    account_id: str | None
    customer_id: str | None
    subscription_id: str | None
    from_price: str | None
    to_price: str | None
    when: str | None
    proration_behavior: str | None
    change_interval: bool
    contract_id: str | None
    crm_fields: dict[str, str] = field(default_factory=dict)

    @property
    def account_key(self) -> str | None:
        """The account this row migrates: its account_id, else its customer_id."""
        return self.account_id or self.customer_id

    def normalised(self) -> dict[str, Any]:
        """The row's meaning, independent of file format, column order and spelling."""
        return {
            "account_id": self.account_id,
            "customer_id": self.customer_id,
            "subscription_id": self.subscription_id,
            "from_price": self.from_price,
            "to_price": self.to_price,
            "when": self.when,
            "proration_behavior": self.proration_behavior,
            "change_interval": self.change_interval,
            "contract_id": self.contract_id,
            "crm": dict(sorted(self.crm_fields.items())),
        }


@dataclass(frozen=True)
class MigrationPlan:
    """A parsed plan: its rows, the problems found while parsing, and its fingerprint."""

    file: str
    name: str | None
    rows: tuple[PlanRow, ...]
    problems: tuple[InputError, ...]
    fingerprint: str

    @property
    def short(self) -> str:
        """The first 12 characters of the fingerprint, for names and messages."""
        return self.fingerprint[:12]

    def content(self) -> str:
        """The normalised rows as canonical JSON (what the fingerprint hashes)."""
        return canonical_json(_normalised_rows(self.rows))

    def raise_problems(self) -> None:
        """Raise the parse problems, if any, all at once."""
        raise_all(list(self.problems))


def raise_all(problems: list[InputError]) -> None:
    """Raise one InputError, or InputErrors listing several in row order; nothing if none."""
    if not problems:
        return
    ordered = sorted(problems, key=lambda e: (e.row or 0, _column_order(e.column)))
    raise ordered[0] if len(ordered) == 1 else InputErrors(ordered)


def _column_order(column: str | None) -> int:
    if column in COLUMNS:
        return COLUMNS.index(column)
    return len(COLUMNS)


def fingerprint_rows(rows: tuple[PlanRow, ...] | list[PlanRow]) -> str:
    """sha256 of the normalised rows, sorted by account: reordering rows keeps it."""
    return hashlib.sha256(canonical_json(_normalised_rows(rows)).encode()).hexdigest()


def _normalised_rows(rows: tuple[PlanRow, ...] | list[PlanRow]) -> list[dict[str, Any]]:
    normalised = [r.normalised() for r in rows]
    return sorted(
        normalised,
        key=lambda r: (r["account_id"] or "", r["customer_id"] or "", r["subscription_id"] or ""),
    )


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def load_plan(path: str | Path, config: MigrationConfig) -> MigrationPlan:
    """Read a CSV or YAML plan file; problems are collected on the plan, not raised."""
    path = Path(path)
    name = str(path)
    try:
        size = path.stat().st_size
        if size > config.max_plan_bytes:
            raise InputError(
                f"the plan file is {size:,} bytes; at most {config.max_plan_bytes:,} are "
                "allowed (max_plan_bytes in configs/migrations.yaml): split the plan",
                file=name,
            )
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError("the plan file does not exist", file=name) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the plan file: {exc}", file=name) from None
    if path.suffix.lower() in (".yaml", ".yml"):
        return parse_yaml_plan(text, name, config)
    if path.suffix.lower() == ".csv":
        return parse_csv_plan(text, name, config)
    raise InputError("a plan is a .csv, .yaml or .yml file", file=name)


def parse_csv_plan(text: str, file: str, config: MigrationConfig) -> MigrationPlan:
    """Parse a CSV plan (header row first); see the module docstring for the columns."""
    problems: list[InputError] = []
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    for column in header:
        if column not in COLUMNS and not column.startswith(CRM_PREFIX):
            problems.append(
                InputError(
                    f"unknown column {column!r}; known: {', '.join(COLUMNS)} and crm.<Field>",
                    file=file,
                    column=column,
                )
            )
    rows: list[PlanRow] = []
    for number, record in enumerate(reader, start=1):
        values = {(k or "").strip(): v for k, v in record.items() if k is not None}
        if None in record:  # more cells than header columns
            problems.append(InputError("more values than header columns", file=file, row=number))
        rows.append(_row(values, number, reader.line_num, {}, file, config, problems))
    return _plan(file, None, rows, problems)


def parse_yaml_plan(text: str, file: str, config: MigrationConfig) -> MigrationPlan:
    """Parse a YAML plan: a list of rows, or a mapping with `migrations`, `name`, `defaults`."""
    try:
        aliases = sum(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text))
        if aliases > config.max_yaml_aliases:
            raise InputError(
                f"the plan uses {aliases} YAML aliases (*name); at most "
                f"{config.max_yaml_aliases} are allowed (max_yaml_aliases in "
                "configs/migrations.yaml)",
                file=file,
            )
        node = yaml.compose(text)
        expanded = _expanded_size(node, {})
        if expanded > config.max_plan_bytes:
            raise InputError(
                f"the plan expands to {expanded:,} characters through its YAML aliases; at "
                f"most {config.max_plan_bytes:,} are allowed (max_plan_bytes)",
                file=file,
            )
        # Every scalar stays the text written, as in a CSV plan: an all-digit id such as
        # 0011831245 must not become the number 11831245.
        data = yaml.load(text, Loader=yaml.BaseLoader)
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {exc}", file=file) from None
    name = None
    defaults: dict[str, Any] = {}
    entries = data
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"name", "defaults", "migrations"})
        if unknown:
            raise InputError(
                f"unknown top-level keys {unknown}; expected name, defaults, migrations",
                file=file,
            )
        name = None if data.get("name") is None else str(data["name"])
        defaults = data.get("defaults") or {}
        if not isinstance(defaults, dict):
            raise InputError("`defaults` must be a mapping", file=file, column="defaults")
        entries = data.get("migrations")
        node = next((v for k, v in node.value if getattr(k, "value", None) == "migrations"), None)
    if not isinstance(entries, list):
        raise InputError("the plan must list its rows (a list, or `migrations:`)", file=file)
    lines = [item.start_mark.line + 1 for item in getattr(node, "value", [])]
    problems: list[InputError] = []
    rows: list[PlanRow] = []
    for number, entry in enumerate(entries, start=1):
        line = lines[number - 1] if number <= len(lines) else None
        if not isinstance(entry, dict):
            problems.append(
                InputError("each row must be a mapping of column: value", file=file, row=number)
            )
            continue
        values: dict[str, Any] = {}
        for key, value in entry.items():
            key = str(key)
            if key == "crm":
                if not isinstance(value, dict):
                    problems.append(
                        InputError("`crm` must map field names to values", file=file, row=number)
                    )
                    continue
                values.update({f"{CRM_PREFIX}{k}": v for k, v in value.items()})
            elif key not in COLUMNS and not key.startswith(CRM_PREFIX):
                problems.append(
                    InputError(
                        f"unknown column {key!r}; known: {', '.join(COLUMNS)}, crm",
                        file=file,
                        row=number,
                        column=key,
                    )
                )
            else:
                values[key] = value
        rows.append(_row(values, number, line, defaults, file, config, problems))
    return _plan(file, name, rows, problems)


def _expanded_size(node: yaml.Node | None, seen: dict[int, int]) -> int:
    """Characters of the document with every alias expanded, counted once per shared node."""
    if node is None:
        return 0
    if id(node) not in seen:
        seen[id(node)] = 0  # a recursive alias counts once
        if isinstance(node, yaml.ScalarNode):
            size = len(node.value) + 1
        elif isinstance(node, yaml.SequenceNode):
            size = 1 + sum(_expanded_size(n, seen) for n in node.value)
        else:
            size = 1 + sum(_expanded_size(k, seen) + _expanded_size(v, seen) for k, v in node.value)
        seen[id(node)] = size
    return seen[id(node)]


def _plan(
    file: str, name: str | None, rows: list[PlanRow], problems: list[InputError]
) -> MigrationPlan:
    if not rows and not problems:
        problems.append(InputError("the plan has no rows", file=file))
    return MigrationPlan(
        file=file,
        name=name,
        rows=tuple(rows),
        problems=tuple(problems),
        fingerprint=fingerprint_rows(rows),
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        value = repr(value)  # what the YAML said, not a binary approximation
    text = str(value).strip()
    return text or None


def _row(
    values: dict[str, Any],
    number: int,
    line: int | None,
    defaults: dict[str, Any],
    file: str,
    config: MigrationConfig,
    problems: list[InputError],
) -> PlanRow:
    def bad(column: str, message: str) -> None:
        problems.append(InputError(message, file=file, row=number, column=column, line=line))

    def get(column: str) -> str | None:
        value = _text(values.get(column))
        return value if value is not None else _text(defaults.get(column))

    ids: dict[str, str | None] = {}
    for column in ("account_id", "customer_id", "subscription_id", "from_price", "to_price"):
        value = get(column)
        if value is not None and any(ch.isspace() for ch in value):
            bad(column, f"{value!r} is not an id (it contains spaces)")
            value = None
        ids[column] = value
    if not ids["account_id"] and not ids["customer_id"]:
        bad("account_id", "give account_id (CRM account) or customer_id (Stripe customer)")
    for column in ("from_price", "to_price"):
        if not ids[column]:
            bad(column, "value is required but empty")
    if ids["from_price"] and ids["from_price"] == ids["to_price"]:
        bad("to_price", "to_price is the same as from_price")

    when = (get("when") or config.default_when).lower()
    if when not in WHEN:
        bad("when", f"{when!r} is not one of {', '.join(WHEN)}")
        when_value: str | None = None
    else:
        when_value = when
    default_proration = "none" if when_value == "period_end" else config.default_proration_behavior
    proration = (get("proration_behavior") or default_proration).lower()
    proration_value: str | None = proration
    if proration not in config.allowed_proration_behaviors:
        bad(
            "proration_behavior",
            f"{proration!r} is not one of {', '.join(config.allowed_proration_behaviors)}",
        )
        proration_value = None
    elif when_value == "period_end" and proration != "none":
        # Switched now without proration, a new price bills from the next period on; any
        # proration would charge part of the current period at the new price.
        bad(
            "proration_behavior",
            f"when: period_end cannot prorate ({proration}); use none, or when: now",
        )
        proration_value = None

    change_interval = False
    raw_flag = values.get("change_interval", defaults.get("change_interval"))
    if isinstance(raw_flag, bool):
        change_interval = raw_flag
    elif _text(raw_flag) is not None:
        flag = str(raw_flag).strip().lower()
        if flag in ("true", "yes", "1"):
            change_interval = True
        elif flag not in ("false", "no", "0"):
            bad("change_interval", f"{raw_flag!r} is not true or false")

    contract_id = get("contract_id")
    crm_fields: dict[str, str] = {}
    for key, value in values.items():
        if not key.startswith(CRM_PREFIX):
            continue
        name = key[len(CRM_PREFIX) :].strip()
        text = _text(value)
        if not _FIELD_NAME.match(name):
            bad(key, f"{name!r} is not a CRM field API name")
        elif text is not None:
            crm_fields[name] = text
    if crm_fields and not contract_id:
        bad("contract_id", "crm fields need the contract_id of the contract to update")

    return PlanRow(
        row=number,
        line=line,
        account_id=ids["account_id"],
        customer_id=ids["customer_id"],
        subscription_id=ids["subscription_id"],
        from_price=ids["from_price"],
        to_price=ids["to_price"],
        when=when_value,
        proration_behavior=proration_value,
        change_interval=change_interval,
        contract_id=contract_id,
        crm_fields=crm_fields,
    )
