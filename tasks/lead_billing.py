"""Billing trouble: why an account must not be sold more right now.

An account has billing trouble, as of a date, when any of these holds (configs/leads.yaml,
`BillingTroubleRule`):

- a dispute open on that date (`open_dispute_statuses`);
- a failed charge within the last `failed_payment_days` days;
- an open reconciliation finding of `finding_severities` on one of its contracts (the latest
  reconciliation.csv).

Upsell signals of such accounts become a CSM task saying why (tasks.lead_rules). Pure pandas;
charges and disputes reach accounts through `tasks.matching.link_customers`.
"""

from __future__ import annotations

import pandas as pd
from pydantic import Field

from revops.config import StrictConfig
from revops.frames import require_columns
from revops.money import format_money
from revops.tasks.matching import link_customers
from revops.tasks.reconciliation_config import Severity


class BillingTroubleRule(StrictConfig):
    """What counts as billing trouble that holds back an upsell."""

    open_dispute_statuses: list[str] = Field(
        default_factory=lambda: [
            "needs_response",
            "warning_needs_response",
            "under_review",
            "warning_under_review",
        ]
    )
    failed_payment_statuses: list[str] = Field(default_factory=lambda: ["failed"])
    failed_payment_days: int = Field(default=30, ge=1, le=1100)
    finding_severities: list[Severity] = Field(default_factory=lambda: ["high"])


def billing_trouble(
    *,
    accounts: pd.DataFrame,
    contracts: pd.DataFrame,
    day: pd.Timestamp,
    rule: BillingTroubleRule,
    customers: pd.DataFrame | None = None,
    charges: pd.DataFrame | None = None,
    disputes: pd.DataFrame | None = None,
    reconciliation: pd.DataFrame | None = None,
) -> pd.Series:
    """Per account with billing trouble, what it is ("open dispute needs_response USD 300.00;
    2 failed payments in 30 days; billing exceptions open on 800C: missing_invoice"), indexed
    by account_id. Frames not given are not checked; events dated `day` or later do not count.
    """
    parts: list[pd.Series] = []
    start = pd.Timestamp(day).tz_localize("UTC") if pd.Timestamp(day).tz is None else day
    events = [f for f in (charges, disputes) if f is not None and len(f)]
    links = pd.Series(dtype=object)
    if events:
        seen = pd.Index(pd.concat([f["customer_id"] for f in events]).dropna().unique())
        linked = link_customers(
            customers if customers is not None else _no_customers(), accounts, seen
        ).dropna(subset=["account_id"])
        links = linked.set_index("customer_id")["account_id"]
    if disputes is not None and len(disputes):
        require_columns(disputes, "disputes frame", ["customer_id", "status", "created_at"])
        d = disputes[
            disputes["status"].isin(rule.open_dispute_statuses) & (disputes["created_at"] < start)
        ].assign(account_id=lambda f: f["customer_id"].map(links))
        d = d.dropna(subset=["account_id"]).sort_values(["account_id", "created_at"])
        text = (
            "open dispute "
            + d["status"].astype(str)
            + " "
            + pd.Series(
                [
                    format_money(int(a), c)
                    for a, c in zip(d["amount_minor"], d["currency"], strict=True)
                ],
                index=d.index,
                dtype=object,
            )
        )
        parts.append(text.groupby(d["account_id"]).agg(", ".join))
    if charges is not None and len(charges):
        require_columns(charges, "charges frame", ["customer_id", "status", "created_at"])
        since = start - pd.Timedelta(days=rule.failed_payment_days)
        c = charges[
            charges["status"].isin(rule.failed_payment_statuses)
            & (charges["created_at"] < start)
            & (charges["created_at"] >= since)
        ]
        count = c["customer_id"].map(links).dropna().value_counts()
        noun = pd.Series(["failed payment" if n == 1 else "failed payments" for n in count])
        parts.append(
            pd.Series(
                count.astype(str).to_numpy()
                + " "
                + noun.to_numpy()
                + f" in {rule.failed_payment_days} days",
                index=count.index,
            )
        )
    if reconciliation is not None and len(reconciliation):
        require_columns(reconciliation, "reconciliation frame", ["contract_id", "code", "severity"])
        f = reconciliation[reconciliation["severity"].isin(rule.finding_severities)]
        f = f.dropna(subset=["contract_id", "code"])[["contract_id", "code"]].drop_duplicates()
        owner = contracts.drop_duplicates("contract_id").set_index("contract_id")["account_id"]
        f = f.assign(account_id=f["contract_id"].map(owner)).dropna(subset=["account_id"])
        f = f.sort_values(["account_id", "contract_id", "code"])
        per_contract = f.groupby(["account_id", "contract_id"])["code"].agg(", ".join).reset_index()
        text = "billing exceptions open on " + per_contract["contract_id"].astype(str)
        text = text + ": " + per_contract["code"]
        parts.append(text.groupby(per_contract["account_id"].to_numpy()).agg("; ".join))
    if not parts:
        return pd.Series(dtype=object, name="billing_trouble")
    joined = pd.concat(parts, axis=1).astype(object)
    out = joined.apply(lambda row: "; ".join(t for t in row if isinstance(t, str)), axis=1)
    out.index.name = "account_id"
    return out.rename("billing_trouble").sort_index()


def _no_customers() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": pd.Series(dtype=str), "salesforce_account_id": []})
