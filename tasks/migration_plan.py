"""Plan migrations: parse a reviewed plan file, check it against the book, price the change.

A plan moves accounts from one Stripe price to another (a price increase, a legacy plan
sunset, a frequency change) and optionally sets fields on each account's CRM contract. It is a
CSV or YAML file; every problem in it is reported at once, each with its row and column.

Everything here is pure: canonical frames and a price catalogue frame in, frames out. The
fingerprint (sha256 of the normalised rows) keys the ledger, approvals and outputs of a plan.

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
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import Field, field_validator

from revops.config import FieldMapping, StrictConfig, load_config
from revops.errors import InputError, InputErrors
from revops.money import format_money, minor_to_major, stripe_to_minor

WHEN = ("now", "period_end")
PRORATION_BEHAVIORS = ("create_prorations", "none", "always_invoice")
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
_PERIODS_PER_YEAR = {"day": 365, "week": 52, "month": 12, "year": 1}

RESOLVED_COLUMNS = [
    "row",
    "account_key",
    "account_id",
    "customer_id",
    "subscription_id",
    "item_id",
    "subscription_status",
    "action",
    "from_price",
    "to_price",
    "currency",
    "from_interval",
    "from_interval_count",
    "to_interval",
    "to_interval_count",
    "quantity",
    "from_unit_minor",
    "to_unit_minor",
    "when",
    "proration_behavior",
    "contract_id",
    "crm_fields",
    "crm_before",
]
IMPACT_COLUMNS = [
    *RESOLVED_COLUMNS,
    "from_amount_minor",
    "to_amount_minor",
    "delta_per_period_minor",
    "delta_per_year_minor",
]
CATALOGUE_COLUMNS = [
    "price_id",
    "active",
    "currency",
    "unit_amount_minor",
    "interval",
    "interval_count",
]


class MigrationConfig(StrictConfig):
    """configs/migrations.yaml."""

    batch_size: int = Field(default=50, ge=1, le=1000)
    approval_timeout_seconds: int = Field(default=4 * 3600, ge=60, le=86_400)
    default_when: Literal["now", "period_end"] = "period_end"
    default_proration_behavior: Literal["create_prorations", "none", "always_invoice"] = (
        "create_prorations"
    )
    allowed_proration_behaviors: list[str] = Field(
        default_factory=lambda: list(PRORATION_BEHAVIORS)
    )
    rollback_proration_behavior: Literal["create_prorations", "none", "always_invoice"] = "none"
    send_proration_behavior: bool = True
    preview_invoices: bool = True
    migratable_statuses: list[str] = Field(
        default_factory=lambda: ["active", "trialing", "past_due"]
    )
    crm_object: str = "Contract"
    crm_external_id_field: str = "Id"
    stripe_metadata_key: str = "revops_migration"
    out_dir: str = "var/out/migrations"

    @field_validator("allowed_proration_behaviors")
    @classmethod
    def _known_behaviors(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(PRORATION_BEHAVIORS))
        if unknown:
            raise ValueError(
                f"unknown proration behaviours {unknown}; known: {PRORATION_BEHAVIORS}"
            )
        return value


@lru_cache(maxsize=4)
def migration_config(directory: Path | None = None) -> MigrationConfig:
    """configs/migrations.yaml, validated."""
    return load_config(MigrationConfig, "migrations.yaml", directory)


# -- the plan file ------------------------------------------------------------------------


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
        return _canonical_json(_normalised_rows(self.rows))

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
    return hashlib.sha256(_canonical_json(_normalised_rows(rows)).encode()).hexdigest()


def _normalised_rows(rows: tuple[PlanRow, ...] | list[PlanRow]) -> list[dict[str, Any]]:
    normalised = [r.normalised() for r in rows]
    return sorted(
        normalised,
        key=lambda r: (r["account_id"] or "", r["customer_id"] or "", r["subscription_id"] or ""),
    )


def _canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def load_plan(path: str | Path, config: MigrationConfig) -> MigrationPlan:
    """Read a CSV or YAML plan file; problems are collected on the plan, not raised."""
    path = Path(path)
    name = str(path)
    try:
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
        # Every scalar stays the text written, as in a CSV plan: an all-digit id such as
        # 0011831245 must not become the number 11831245.
        data = yaml.load(text, Loader=yaml.BaseLoader)
        node = yaml.compose(text)
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


# -- prices and subscriptions as Stripe returns them -------------------------------------


def catalogue_entry(obj: dict[str, Any]) -> dict[str, Any]:
    """A catalogue row from a Stripe price, or from a plan (the older form of a price)."""
    currency = str(obj.get("currency") or "").upper() or None
    if obj.get("object") == "price" or "unit_amount" in obj:
        recurring = obj.get("recurring") or {}  # None on a one-time price
        amount = obj.get("unit_amount")
        interval, count = recurring.get("interval"), recurring.get("interval_count")
    else:
        amount, interval, count = obj.get("amount"), obj.get("interval"), obj.get("interval_count")
    return {
        "price_id": obj["id"],
        "active": bool(obj.get("active", True)),
        "currency": currency,
        "unit_amount_minor": (
            None if amount is None or currency is None else stripe_to_minor(int(amount), currency)
        ),
        "interval": interval,
        "interval_count": None if count is None else int(count),
    }


def catalogue_frame(entries: list[dict[str, Any]]) -> pd.DataFrame:
    """The price catalogue: one row per known price (unknown prices are simply absent)."""
    frame = pd.DataFrame(entries, columns=CATALOGUE_COLUMNS)
    return frame.astype(
        {
            "price_id": "str",
            "active": "bool",
            "unit_amount_minor": "Int64",
            "interval_count": "Int64",
        }
    ).drop_duplicates("price_id", keep="last")


def catalogue_from_subscriptions(subscriptions: pd.DataFrame) -> pd.DataFrame:
    """A catalogue of the prices subscriptions are on (the demo book has no price list)."""
    prices = subscriptions.dropna(subset=["price_id"]).drop_duplicates("price_id")
    return catalogue_frame(
        [
            {
                "price_id": r.price_id,
                "active": True,
                "currency": r.currency,
                "unit_amount_minor": None if pd.isna(r.unit_amount_minor) else r.unit_amount_minor,
                "interval": None if pd.isna(r.interval) else r.interval,
                "interval_count": None if pd.isna(r.interval_count) else r.interval_count,
            }
            for r in prices.itertuples(index=False)
        ]
    )


def subscription_items(subscription: dict[str, Any]) -> list[dict[str, Any]]:
    """The items of a Stripe subscription object: item id, price id, quantity, amounts."""
    out = []
    for item in (subscription.get("items") or {}).get("data", []):
        price = item.get("price") if isinstance(item.get("price"), dict) else item.get("plan")
        entry = catalogue_entry(price) if isinstance(price, dict) else {}
        out.append(
            {
                "item_id": item.get("id"),
                "price_id": entry.get("price_id"),
                "quantity": None if item.get("quantity") is None else int(item["quantity"]),
                "unit_amount_minor": entry.get("unit_amount_minor"),
                "currency": entry.get("currency"),
                "interval": entry.get("interval"),
                "interval_count": entry.get("interval_count"),
            }
        )
    return out


def item_on(subscription: dict[str, Any], price_id: str) -> dict[str, Any] | None:
    """The subscription's item on `price_id`, or None."""
    return next((i for i in subscription_items(subscription) if i["price_id"] == price_id), None)


def subscription_state(subscription: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """What the ledger keeps of a subscription: enough to verify it and to restore it."""
    return {
        "subscription_id": subscription.get("id"),
        "status": subscription.get("status"),
        **item,
    }


# -- the plan against the book ------------------------------------------------------------


@dataclass(frozen=True)
class Book:
    """The current state a plan is checked against (canonical frames + price catalogue).

    `accounts` and `contracts` are empty when no CRM is read; customers then link to
    accounts through their `salesforce_account_id` metadata only.
    """

    customers: pd.DataFrame
    subscriptions: pd.DataFrame
    accounts: pd.DataFrame
    contracts: pd.DataFrame
    catalogue: pd.DataFrame


def resolve_plan(
    plan: MigrationPlan,
    book: Book,
    config: MigrationConfig,
    mapping: FieldMapping | None = None,
    ledger: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Each plan row with its customer, subscription item and both prices.

    Raises every problem of the plan at once (parse problems included), each naming its
    row and column. `action` is `change` when the subscription is on from_price, `none`
    when it is already on to_price, `moved` when it is on neither but the plan's `ledger`
    rows know it (a re-run then settles or verifies it instead of refusing the plan).
    `crm_before` holds the contract's current values of the fields the row sets (None where
    the CRM frame does not carry the field).
    """
    problems = list(plan.problems)
    index = _BookIndex(book, config)
    if ledger is not None and len(ledger):
        index.ledger = dict(zip(ledger["account_key"], ledger["subscription_id"], strict=True))
    resolved: list[dict[str, Any]] = []
    seen_keys: dict[str, int] = {}
    seen_customers: dict[str, int] = {}
    for row in plan.rows:

        def bad(column: str, message: str, row: PlanRow = row) -> None:
            problems.append(
                InputError(message, file=plan.file, row=row.row, column=column, line=row.line)
            )

        key = row.account_key
        if key and key in seen_keys:
            bad(
                "account_id" if row.account_id else "customer_id",
                f"account {key} is already in row {seen_keys[key]}",
            )
            continue
        if key:
            seen_keys[key] = row.row
        entry = _resolve_row(row, index, bad)
        if entry is None:
            continue
        customer = entry["customer_id"]
        if customer in seen_customers:
            bad(
                "account_id" if row.account_id else "customer_id",
                f"customer {customer} (account {key}) is already in row {seen_customers[customer]}",
            )
            continue
        seen_customers[customer] = row.row
        entry["crm_before"] = contract_values(
            book.contracts, row.contract_id, row.crm_fields, mapping
        )
        resolved.append(entry)
    raise_all(problems)
    return _resolved_frame(resolved)


class _BookIndex:
    """Lookups over the book, built once per plan."""

    def __init__(self, book: Book, config: MigrationConfig) -> None:
        self.customers = set(book.customers["customer_id"])
        self.account_customers: dict[str, set[str]] = {}
        linked = book.customers.dropna(subset=["salesforce_account_id"])
        for account, customer in zip(
            linked["salesforce_account_id"], linked["customer_id"], strict=True
        ):
            self.account_customers.setdefault(account, set()).add(customer)
        crm = book.accounts.dropna(subset=["stripe_customer_id"])
        for account, customer in zip(crm["account_id"], crm["stripe_customer_id"], strict=True):
            self.account_customers.setdefault(account, set()).add(customer)
        self.accounts = set(book.accounts["account_id"]) | set(self.account_customers)
        subs = book.subscriptions
        self.all_subscriptions = dict(
            zip(subs["subscription_id"], subs["customer_id"], strict=True)
        )
        self.live_subscriptions = subs[subs["status"].isin(config.migratable_statuses)]
        self.prices = {r["price_id"]: r for r in book.catalogue.to_dict("records")}
        self.contracts = dict(
            zip(book.contracts["contract_id"], book.contracts["account_id"], strict=True)
        )
        self.has_contracts = not book.contracts.empty
        self.ledger: dict[str, str] = {}


def _resolve_row(row: PlanRow, index: _BookIndex, bad: Any) -> dict[str, Any] | None:
    """The row's resolved entry, or None after reporting why it cannot be resolved."""
    ok = True
    candidates: set[str] = set()
    if row.customer_id:
        if row.customer_id not in index.customers:
            bad("customer_id", f"unknown customer {row.customer_id} (not in Stripe)")
            ok = False
        else:
            candidates = {row.customer_id}
    if row.account_id:
        linked = index.account_customers.get(row.account_id, set())
        if row.account_id not in index.accounts:
            bad("account_id", f"unknown account {row.account_id}")
            ok = False
        elif row.customer_id and ok:
            if linked and row.customer_id not in linked:
                bad(
                    "customer_id",
                    f"customer {row.customer_id} is not linked to account {row.account_id} "
                    f"(linked: {', '.join(sorted(linked))})",
                )
                ok = False
        elif not row.customer_id:
            if not linked:
                bad(
                    "account_id",
                    f"account {row.account_id} has no Stripe customer linked "
                    "(Stripe_Customer_Id__c or the customer's salesforce_account_id metadata)",
                )
                ok = False
            candidates = linked
    if row.contract_id and index.has_contracts:
        owner = index.contracts.get(row.contract_id)
        if owner is None:
            bad("contract_id", f"unknown contract {row.contract_id}")
            ok = False
        elif row.account_id and owner != row.account_id:
            bad(
                "contract_id",
                f"contract {row.contract_id} belongs to account {owner}, not {row.account_id}",
            )
            ok = False

    to_price = index.prices.get(row.to_price) if row.to_price else None
    if row.to_price and to_price is None:
        bad("to_price", f"price {row.to_price} does not exist in Stripe")
        ok = False
    elif to_price is not None and not to_price["active"]:
        bad("to_price", f"price {row.to_price} is inactive (archived): activate it or pick another")
        ok = False
    elif to_price is not None and not isinstance(to_price["interval"], str):
        bad("to_price", f"price {row.to_price} is not recurring (a one-time price)")
        ok = False
    elif to_price is not None and pd.isna(to_price["unit_amount_minor"]):
        bad("to_price", f"price {row.to_price} has no per-unit amount (tiered or metered)")
        ok = False

    item = None
    action = None
    if candidates and row.from_price:
        subs = index.live_subscriptions[index.live_subscriptions["customer_id"].isin(candidates)]
        if row.subscription_id:
            if row.subscription_id not in index.all_subscriptions:
                bad("subscription_id", f"unknown subscription {row.subscription_id}")
                return None
            owner = index.all_subscriptions[row.subscription_id]
            if owner not in candidates:
                bad(
                    "subscription_id",
                    f"subscription {row.subscription_id} belongs to customer {owner}",
                )
                return None
            subs = subs[subs["subscription_id"] == row.subscription_id]
            if subs.empty:
                bad("subscription_id", f"subscription {row.subscription_id} is not active")
                return None
        on_from = subs[subs["price_id"] == row.from_price]
        on_to = subs[subs["price_id"] == row.to_price]
        who = row.account_key
        if on_from["subscription_id"].nunique() > 1:
            bad(
                "subscription_id",
                f"{who} has {on_from['subscription_id'].nunique()} subscriptions on "
                f"{row.from_price} ({', '.join(sorted(on_from['subscription_id']))}): "
                "name one in subscription_id",
            )
            return None
        if len(on_from):
            item, action = on_from.iloc[0], "change"
        elif on_to["subscription_id"].nunique() == 1:
            item, action = on_to.iloc[0], "none"
        elif index.ledger.get(row.account_key) in set(subs["subscription_id"]):
            known = subs[subs["subscription_id"] == index.ledger[row.account_key]]
            item, action = known.iloc[0], "moved"
        else:
            now_on = sorted(set(subs["price_id"].dropna()))
            bad(
                "from_price",
                f"no active subscription of {who} is on {row.from_price}"
                + (f" (it is on {', '.join(now_on)})" if now_on else ""),
            )
            return None
    if not ok or item is None:
        return None

    from_price = index.prices.get(row.from_price) or {}
    from_currency = from_price.get("currency") or item["currency"]
    from_interval = from_price.get("interval") or item["interval"]
    from_count = _int(from_price.get("interval_count"), _int(item["interval_count"], 1))
    from_unit = _int(from_price.get("unit_amount_minor"), None)
    if from_unit is None and action == "change":
        from_unit = _int(item["unit_amount_minor"], None)
    assert to_price is not None
    if from_currency != to_price["currency"]:
        bad(
            "to_price",
            f"currency mismatch: {row.from_price} is {from_currency}, "
            f"{row.to_price} is {to_price['currency']}",
        )
        return None
    to_count = _int(to_price["interval_count"], 1)
    if (from_interval, from_count) != (to_price["interval"], to_count) and not row.change_interval:
        bad(
            "to_price",
            f"interval mismatch: {row.from_price} bills every {from_count} {from_interval}, "
            f"{row.to_price} every {to_count} {to_price['interval']}; "
            "set change_interval: true for a frequency change",
        )
        return None
    return {
        "row": row.row,
        "account_key": row.account_key,
        "account_id": row.account_id,
        "customer_id": item["customer_id"],
        "subscription_id": item["subscription_id"],
        "item_id": item["item_id"],
        "subscription_status": item["status"],
        "action": action,
        "from_price": row.from_price,
        "to_price": row.to_price,
        "currency": to_price["currency"],
        "from_interval": from_interval,
        "from_interval_count": from_count,
        "to_interval": to_price["interval"],
        "to_interval_count": to_count,
        "quantity": _int(item["quantity"], 1),
        "from_unit_minor": from_unit,
        "to_unit_minor": _int(to_price["unit_amount_minor"], None),
        "when": row.when,
        "proration_behavior": row.proration_behavior,
        "contract_id": row.contract_id,
        "crm_fields": _canonical_json(row.crm_fields) if row.crm_fields else None,
    }


def _int(value: Any, default: int | None) -> int | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return default
    return int(value)


def _resolved_frame(entries: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(entries, columns=RESOLVED_COLUMNS)
    return frame.astype(
        {
            "row": "int64",
            "from_interval_count": "Int64",
            "to_interval_count": "Int64",
            "quantity": "int64",
            "from_unit_minor": "Int64",
            "to_unit_minor": "Int64",
        }
    ).reset_index(drop=True)


# -- CRM contract values -------------------------------------------------------------------


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
    return _canonical_json(values)


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


# -- money impact --------------------------------------------------------------------------


def price_impact(resolved: pd.DataFrame) -> pd.DataFrame:
    """Per account: billed per period before and after, and the difference, in minor units.

    delta_per_period = (to unit - from unit) x quantity when both prices bill on the same
    interval (NA for a frequency change); delta_per_year annualises both sides (rounded half
    to even once, only when a period does not divide a year). Accounts already on the target
    price change nothing.
    """
    out = resolved.copy()
    changing = out["action"] == "change"
    from_amount = out["from_unit_minor"] * out["quantity"]
    to_amount = out["to_unit_minor"] * out["quantity"]
    out["from_amount_minor"] = from_amount.where(changing, to_amount).astype("Int64")
    out["to_amount_minor"] = to_amount.astype("Int64")
    same_interval = (out["from_interval"] == out["to_interval"]) & (
        out["from_interval_count"] == out["to_interval_count"]
    )
    delta = (out["to_amount_minor"] - out["from_amount_minor"]).where(same_interval)
    out["delta_per_period_minor"] = delta.astype("Int64")
    out["delta_per_year_minor"] = pd.array(
        [
            _per_year(r.to_amount_minor, r.to_interval, r.to_interval_count)
            - _per_year(r.from_amount_minor, r.from_interval, r.from_interval_count)
            if _known(r.to_amount_minor, r.from_amount_minor)
            else None
            for r in out.itertuples(index=False)
        ],
        dtype="Int64",
    )
    return out[IMPACT_COLUMNS]


def _known(*values: Any) -> bool:
    return all(v is not None and not pd.isna(v) for v in values)


def _per_year(amount: int, interval: str | None, count: Any) -> int:
    periods = Fraction(_PERIODS_PER_YEAR.get(interval or "month", 12), int(count or 1))
    return round(Fraction(int(amount)) * periods)  # Fraction rounds half to even


def impact_totals(impact: pd.DataFrame) -> pd.DataFrame:
    """Per currency: accounts in the plan, accounts changing, and the money moved per year.

    Never summed across currencies. `preview_amount_due_minor` (when present) totals
    Stripe's invoice previews of the changes that prorate.
    """
    frame = impact.assign(changing=impact["action"] == "change")
    grouped = frame.groupby("currency", sort=True)
    totals = pd.DataFrame(
        {
            "accounts": grouped.size(),
            "changing": grouped["changing"].sum().astype("int64"),
            "from_per_year_minor": grouped.apply(
                lambda g: _sum_per_year(g, "from"), include_groups=False
            ),
            "to_per_year_minor": grouped.apply(
                lambda g: _sum_per_year(g, "to"), include_groups=False
            ),
            "delta_per_year_minor": grouped["delta_per_year_minor"].sum(min_count=1),
        }
    )
    if "preview_amount_due_minor" in impact.columns:
        totals["preview_amount_due_minor"] = grouped["preview_amount_due_minor"].sum(min_count=1)
    return totals.reset_index().astype(
        {
            "from_per_year_minor": "Int64",
            "to_per_year_minor": "Int64",
            "delta_per_year_minor": "Int64",
        }
    )


def _sum_per_year(group: pd.DataFrame, side: str) -> int | None:
    amounts = [
        _per_year(a, i, c)
        for a, i, c in zip(
            group[f"{side}_amount_minor"],
            group[f"{side}_interval"],
            group[f"{side}_interval_count"],
            strict=True,
        )
        if _known(a)
    ]
    return sum(amounts) if amounts else None


def idempotency_key(fingerprint: str, account_key: str, operation: str, attempt: int) -> str:
    """The Stripe idempotency key of one write: plan, account, operation, attempt.

    A retry of the same attempt replays Stripe's stored result; a new attempt (after a
    recorded failure, or a rollback's restore) gets a new key so Stripe does not replay an
    old answer.
    """
    return f"revops-{operation}:{fingerprint[:24]}:{account_key}:{attempt}"


def plan_markdown(
    plan: MigrationPlan, impact: pd.DataFrame, totals: pd.DataFrame, source: str
) -> str:
    """A reviewer's summary of a plan: what changes and what it is worth, per currency."""
    lines = [
        f"# Plan migration {plan.short}",
        "",
        f"- plan file: `{plan.file}`" + (f" ({plan.name})" if plan.name else ""),
        f"- fingerprint: `{plan.fingerprint}`",
        f"- source: {source}",
        f"- accounts: {len(impact)}, changing: {int((impact['action'] == 'change').sum())}",
        "",
        "| currency | changing | billed per year before | after | difference |",
        "|---|---:|---:|---:|---:|",
    ]
    for t in totals.itertuples(index=False):
        lines.append(
            f"| {t.currency} | {t.changing} | {_money(t.from_per_year_minor, t.currency)} | "
            f"{_money(t.to_per_year_minor, t.currency)} | "
            f"{_money(t.delta_per_year_minor, t.currency)} |"
        )
    moves = (
        impact[impact["action"] == "change"]
        .groupby(["from_price", "to_price", "when", "proration_behavior"], dropna=False)
        .size()
    )
    if len(moves):
        lines += [
            "",
            "| from price | to price | when | proration | accounts |",
            "|---|---|---|---|---:|",
        ]
        for (src, dst, when, proration), n in moves.items():
            lines.append(f"| {src} | {dst} | {when} | {proration} | {n} |")
    return "\n".join(lines) + "\n"


def _money(amount: Any, currency: str) -> str:
    return "—" if amount is None or pd.isna(amount) else format_money(int(amount), currency)


# -- the plan against the ledger -----------------------------------------------------------

WORK = ("change", "reconcile: pending", "retry: failed")


def plan_status(resolved: pd.DataFrame, ledger: pd.DataFrame) -> pd.DataFrame:
    """Each resolved row with its ledger status and what an apply run will do with it.

    planned: change | none: already on to_price | skip: applied | skip: rolled back |
    reconcile: pending (re-read first: a crash may have left it changed) | retry: failed.
    """
    known = ledger.set_index("account_key")[["operation", "status"]] if len(ledger) else None
    ledger_status, planned = [], []
    for row in resolved.itertuples(index=False):
        if known is not None and row.account_key in known.index:
            operation, status = known.loc[row.account_key]
            ledger_status.append(f"{operation}:{status}")
            if operation == "rollback":
                planned.append("skip: rolled back")
            elif status == "applied":
                planned.append("skip: applied")
            elif status == "pending":
                planned.append("reconcile: pending")
            else:
                planned.append("retry: failed")
        else:
            ledger_status.append("")
            planned.append("change" if row.action == "change" else "none: already on to_price")
    return resolved.assign(ledger_status=ledger_status, planned=planned)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe records of a frame (NA -> None, numpy ints -> int)."""
    return json.loads(frame.to_json(orient="records", date_format="iso"))
