"""CRM hygiene: the records that make RevOps reporting wrong, one row per problem.

Checks, as of a date (configs/hygiene.yaml, `HygieneConfig`):

- `account_without_stripe`: a CRM account no Stripe customer links to (neither the account's
  Stripe customer id field nor a customer's Salesforce account metadata);
- `customer_without_account`: a Stripe customer linked to no CRM account;
- `active_contract_past_end`: a contract still in an active status after its end date;
- `contract_without_owner`: a contract with no owner;
- `inactive_owner` (with a users frame): an account, a contract in an active status or an open
  opportunity owned by a user who is inactive (left the company: nobody works the record);
- `duplicate_account`: accounts sharing a Stripe customer id, a normalised name (case,
  punctuation and legal suffixes such as Inc or GmbH ignored), or the email domain of their
  Stripe customers (public mail domains ignored); each account of a group gets a row naming
  the others;
- `opportunity_past_close`: an open opportunity whose close date has passed.

Pure pandas: `tasks.matching.link_customers` decides links as reconciliation does.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from pathlib import Path

import pandas as pd
from pydantic import Field

from revops.config import StrictConfig, load_config
from revops.frames import require_columns
from revops.tasks.matching import link_customers

CHECKS: tuple[str, ...] = (
    "account_without_stripe",
    "customer_without_account",
    "active_contract_past_end",
    "contract_without_owner",
    "inactive_owner",
    "duplicate_account",
    "opportunity_past_close",
)
HYGIENE_COLUMNS = ["check", "object", "record_id", "account_id", "detail"]


class HygieneConfig(StrictConfig):
    """configs/hygiene.yaml: what the CRM hygiene report checks."""

    active_contract_statuses: list[str] = Field(default_factory=lambda: ["Activated"])
    legal_suffixes: list[str] = Field(
        default_factory=lambda: [
            "inc",
            "incorporated",
            "llc",
            "ltd",
            "limited",
            "gmbh",
            "ag",
            "sa",
            "sas",
            "bv",
            "corp",
            "corporation",
            "co",
            "company",
            "plc",
            "kk",
            "pty",
        ]
    )
    public_email_domains: list[str] = Field(
        default_factory=lambda: [
            "gmail.com",
            "googlemail.com",
            "outlook.com",
            "hotmail.com",
            "yahoo.com",
            "icloud.com",
            "proton.me",
            "protonmail.com",
            "aol.com",
            "gmx.de",
        ]
    )
    checks: list[str] = Field(default_factory=lambda: list(CHECKS))


@lru_cache(maxsize=8)
def hygiene_config(directory: Path | None = None) -> HygieneConfig:
    """configs/hygiene.yaml, validated."""
    return load_config(HygieneConfig, "hygiene.yaml", directory)


def hygiene_report(
    *,
    accounts: pd.DataFrame,
    contracts: pd.DataFrame,
    customers: pd.DataFrame,
    opportunities: pd.DataFrame,
    as_of: date,
    config: HygieneConfig,
    users: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per hygiene problem (HYGIENE_COLUMNS), in CHECKS order then record id.

    `users` (user_id, name, is_active), when given, also flags the accounts, active
    contracts and open opportunities whose owner is an inactive user (`inactive_owner`).
    """
    require_columns(accounts, "accounts frame", ["account_id", "name", "stripe_customer_id"])
    require_columns(contracts, "contracts frame", ["contract_id", "account_id", "owner_id"])
    require_columns(customers, "customers frame", ["customer_id", "salesforce_account_id"])
    require_columns(opportunities, "opportunities frame", ["opportunity_id", "is_closed"])
    day = pd.Timestamp(as_of)
    links = link_customers(customers, accounts, pd.Index([], dtype="str"))
    linked = links.dropna(subset=["account_id"])
    parts = {
        "account_without_stripe": _rows(
            accounts[~accounts["account_id"].isin(linked["account_id"])],
            "account_without_stripe",
            "Account",
            "account_id",
            "account_id",
            "no Stripe customer links to this account",
        ),
        "customer_without_account": _rows(
            customers[
                customers["customer_id"].isin(links.loc[links["account_id"].isna(), "customer_id"])
            ],
            "customer_without_account",
            "Customer",
            "customer_id",
            None,
            "Stripe customer linked to no CRM account",
        ),
        "active_contract_past_end": _past_end(contracts, day, config),
        "contract_without_owner": _ownerless(contracts),
        "inactive_owner": _inactive_owners(accounts, contracts, opportunities, users, config),
        "duplicate_account": _duplicates(accounts, customers, linked, config),
        "opportunity_past_close": _stale_opportunities(opportunities, day),
    }
    frames = [parts[check] for check in CHECKS if check in config.checks and len(parts[check])]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=str) for c in HYGIENE_COLUMNS})
    out = pd.concat(frames, ignore_index=True)
    rank = out["check"].map({c: i for i, c in enumerate(CHECKS)})
    out = out.assign(_rank=rank).sort_values(["_rank", "record_id"], kind="stable")
    return out[HYGIENE_COLUMNS].reset_index(drop=True).astype(object)


def hygiene_counts(report: pd.DataFrame) -> dict[str, int]:
    """Problems per check, every check listed (0 when clean)."""
    counts = report["check"].value_counts()
    return {check: int(counts.get(check, 0)) for check in CHECKS}


def _rows(
    frame: pd.DataFrame,
    check: str,
    obj: str,
    id_column: str,
    account_column: str | None,
    detail: object,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "check": check,
            "object": obj,
            "record_id": frame[id_column].to_numpy(dtype=object),
            "account_id": None if account_column is None else frame[account_column].to_numpy(),
            "detail": detail.to_numpy(dtype=object) if isinstance(detail, pd.Series) else detail,
        }
    )


def _past_end(contracts: pd.DataFrame, day: pd.Timestamp, config: HygieneConfig) -> pd.DataFrame:
    late = contracts[
        contracts["status"].isin(config.active_contract_statuses)
        & contracts["end_date"].notna()
        & (contracts["end_date"] < day)
    ]
    detail = (
        "status "
        + late["status"].astype(str)
        + " but ended "
        + late["end_date"].dt.strftime("%Y-%m-%d")
    )
    return _rows(late, "active_contract_past_end", "Contract", "contract_id", "account_id", detail)


def _ownerless(contracts: pd.DataFrame) -> pd.DataFrame:
    owner = contracts["owner_id"]
    missing = owner.isna() | (owner.astype(str).str.strip() == "")
    return _rows(
        contracts[missing.to_numpy()],
        "contract_without_owner",
        "Contract",
        "contract_id",
        "account_id",
        "no owner",
    )


def _inactive_owners(
    accounts: pd.DataFrame,
    contracts: pd.DataFrame,
    opportunities: pd.DataFrame,
    users: pd.DataFrame | None,
    config: HygieneConfig,
) -> pd.DataFrame:
    if users is None or users.empty:
        return pd.DataFrame(columns=HYGIENE_COLUMNS)
    require_columns(users, "users frame", ["user_id", "is_active"])
    gone = users[~users["is_active"].astype(bool)]
    names = gone.set_index("user_id")["name"] if "name" in gone.columns else pd.Series()
    records = [
        (accounts, "Account", "account_id"),
        (
            contracts[contracts["status"].isin(config.active_contract_statuses)],
            "Contract",
            "contract_id",
        ),
        (opportunities[~opportunities["is_closed"].astype(bool)], "Opportunity", "opportunity_id"),
    ]
    out = []
    for frame, obj, id_column in records:
        if "owner_id" not in frame.columns:
            continue
        hit = frame[frame["owner_id"].isin(gone["user_id"])]
        owner = hit["owner_id"].astype(str)
        name = owner.map(names).fillna(owner)
        detail = "owner " + name + " (" + owner + ") is inactive"
        out.append(_rows(hit, "inactive_owner", obj, id_column, "account_id", detail))
    return pd.concat(out, ignore_index=True)


def normalised_name(names: pd.Series, suffixes: list[str]) -> pd.Series:
    """Lower case, punctuation dropped, legal suffixes removed: "ACME, Inc." -> "acme"."""
    words = names.fillna("").astype(str).str.lower().str.replace(r"[^\w\s]", " ", regex=True)
    pattern = r"\b(?:" + "|".join(re.escape(s) for s in suffixes) + r")\b" if suffixes else None
    if pattern:
        words = words.str.replace(pattern, " ", regex=True)
    return words.str.split().str.join(" ")


def _duplicates(
    accounts: pd.DataFrame,
    customers: pd.DataFrame,
    linked: pd.DataFrame,
    config: HygieneConfig,
) -> pd.DataFrame:
    keyed = [
        ("Stripe customer", accounts[["account_id"]].assign(key=accounts["stripe_customer_id"])),
        (
            "name",
            accounts[["account_id"]].assign(
                key=normalised_name(accounts["name"], config.legal_suffixes)
            ),
        ),
    ]
    if "email" in customers.columns:
        domain = customers["email"].astype(object).str.extract(r"@([^@\s>]+)$", expand=False)
        domain = domain.str.lower()
        per_customer = pd.DataFrame({"customer_id": customers["customer_id"], "key": domain})
        per_customer = per_customer[~per_customer["key"].isin(config.public_email_domains)]
        by_account = linked.merge(per_customer, on="customer_id")[["account_id", "key"]]
        keyed.append(("email domain", by_account))
    out = []
    for label, frame in keyed:
        frame = frame.dropna(subset=["key"])
        frame = frame[frame["key"] != ""].drop_duplicates()
        groups = frame.groupby("key")["account_id"].agg(lambda ids: sorted(set(ids)))
        groups = groups[groups.map(len) > 1]
        for key, ids in groups.items():
            for account_id in ids:
                others = ", ".join(i for i in ids if i != account_id)
                out.append(
                    {
                        "check": "duplicate_account",
                        "object": "Account",
                        "record_id": account_id,
                        "account_id": account_id,
                        "detail": f"same {label} ({key}) as {others}",
                    }
                )
    return pd.DataFrame(out, columns=HYGIENE_COLUMNS)


def _stale_opportunities(opportunities: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    stale = opportunities[
        ~opportunities["is_closed"].astype(bool) & (opportunities["close_date"] < day)
    ]
    days = (day - stale["close_date"]).dt.days.astype("int64").astype(str)
    detail = (
        "open ("
        + stale["stage"].astype(str)
        + ") but closed "
        + stale["close_date"].dt.strftime("%Y-%m-%d")
        + ", "
        + days
        + " days ago"
    )
    return _rows(
        stale, "opportunity_past_close", "Opportunity", "opportunity_id", "account_id", detail
    )
