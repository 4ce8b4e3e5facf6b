"""Upsell signals: seat use near or over the contracted seats, usage over entitlement, billed
overage; and what replaces the upsell for accounts at risk or with billing trouble (a CSM task).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from revops.frames import empty_frame, require_columns
from revops.money import BASIS_POINTS, format_money
from revops.periods import OPEN_END
from revops.tasks.lead_config import LeadConfig
from revops.tasks.lead_frames import annual_minor, count_text, join_text
from revops.tasks.matching import link_customers

DAYS_PER_MONTH = 30  # entitlements are per month; a usage window of N days is N/30 months
EPSILON = 1e-9  # percentiles of whole seat counts land on x.0000000001 after interpolation


def upsell_leads(
    accounts: pd.DataFrame,
    contracts: pd.DataFrame,
    usage: pd.DataFrame,
    invoice_lines: pd.DataFrame,
    invoices: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    risk_tiers: pd.DataFrame | None,
    trouble: pd.Series,
    day: pd.Timestamp,
    config: LeadConfig,
) -> list[pd.DataFrame]:
    """Upsell leads (skipped for at-risk accounts) and the CSM tasks that replace them.

    An account with billing trouble gets the CSM task instead of the upsell, saying why; its
    upsell is not listed unless the account is also at risk (then it is skipped, as before).
    """
    current = contracts[
        contracts["status"].isin(config.active_contract_statuses)
        & (contracts["start_date"] <= day)
        & (contracts["end_date"].isna() | (contracts["end_date"] >= day))
    ]
    if current.empty:
        return []
    # The account's main contract prices the extra seats: the one running longest, then largest.
    main = (
        current.assign(_end=current["end_date"].fillna(pd.Timestamp(OPEN_END)))
        .sort_values(
            ["account_id", "_end", "quantity", "contract_id"], ascending=[True, False, False, True]
        )
        .drop_duplicates("account_id")
        .set_index("account_id")
    )
    seats = current.groupby("account_id")["quantity"].sum().reindex(main.index)
    start = day - pd.Timedelta(days=config.usage_window_days)
    recent = usage[
        (usage["date"] >= start) & (usage["date"] < day) & usage["account_id"].isin(main.index)
    ]
    signals = [
        _seat_signal(recent, seats, config),
        *_entitlement_signals(recent, seats, config),
        _overage_signal(
            invoice_lines, contracts, accounts, invoices, customers, start, day, config
        ),
    ]
    hit = pd.Series(False, index=main.index)
    extra = pd.Series(1, index=main.index, dtype="int64")
    text = pd.Series("", index=main.index, dtype=object)
    for signal in signals:
        signal = signal.reindex(main.index)
        fired = signal["hit"].fillna(False).astype(bool)
        hit |= fired
        extra = extra.where(~fired, np.maximum(extra, signal["extra"].fillna(1).astype("int64")))
        text = join_text(text, signal["text"].where(fired, "").fillna(""))
    main, extra, text = main[hit.to_numpy()], extra[hit], text[hit]
    if main.empty:
        return []

    account_id = main.index.to_series(index=main.index)
    period = f"{day:%Y-%m}"
    tiers = _risk(risk_tiers, config).reindex(main.index)
    at_risk = tiers.notna()
    held = pd.Series(trouble, dtype=object).reindex(main.index)
    troubled = held.notna()
    as_task = config.upsell_as == "task"
    task_due = day + pd.Timedelta(days=config.task_due_days)
    close = (day.to_period("M") + config.upsell_close_months).end_time.normalize()
    upsell = pd.DataFrame(
        {
            "lead_key": "upsell:" + account_id + ":" + period,
            "kind": "upsell",
            "account_id": account_id,
            "contract_id": main["contract_id"],
            "amount_minor": pd.array(annual_minor(main, extra.to_numpy()), dtype="Int64"),
            "currency": main["currency"],
            "close_date": task_due if as_task else close,
            "contract_owner": main["owner_id"],
            "signal": text + "; proposing " + count_text(extra, "more seat"),
            "skip_reason": pd.Series(
                "account is at risk (tier " + tiers.astype(str) + "): CSM task instead",
                index=main.index,
            ).where(at_risk),
            "sf_object": "Task" if as_task else "Opportunity",
            "sf_type": None if as_task else config.upsell_type,
            "stage": None if as_task else config.upsell_stage,
            "seats": extra,
        },
        index=main.index,
    )
    risk_text = pd.Series(
        np.where(at_risk, " but account is at risk: check in before selling", ""), index=main.index
    )
    trouble_text = " but billing trouble: " + held.astype(str) + ": settle billing before selling"
    trouble_text = trouble_text.where(troubled, "")
    trouble_text = trouble_text.where(~at_risk, trouble_text.str.replace(" but ", "; ", n=1))
    asks = (at_risk | troubled).to_numpy()
    csm = upsell[asks].assign(
        lead_key=lambda f: "csm:" + f["account_id"] + ":" + period,
        kind="csm_task",
        amount_minor=pd.NA,
        currency=None,
        close_date=task_due,
        signal=(text + risk_text + trouble_text)[asks],
        skip_reason=None,
        sf_object="Task",
        sf_type=None,
        stage=None,
    )
    upsell = upsell[(at_risk | ~troubled).to_numpy()]
    return [upsell.reset_index(drop=True), csm.reset_index(drop=True)]


def _seat_signal(recent: pd.DataFrame, seats: pd.Series, config: LeadConfig) -> pd.DataFrame:
    """Seat use (max or percentile of daily values) at or above the threshold of contracted."""
    daily = recent[recent["metric"] == config.usage_metric].groupby("account_id")["quantity"]
    if config.seat_usage_statistic == "max":
        stat = daily.max()
    else:
        stat = daily.quantile(config.seat_usage_percentile / 100)
    contracted = seats.reindex(stat.index).to_numpy(dtype=np.int64)
    used = np.ceil(stat.to_numpy(dtype=np.float64) - EPSILON).astype(np.int64)
    bp = config.seat_threshold_bp
    over = used * BASIS_POINTS - bp * contracted
    safe = np.maximum(contracted, 1)
    pct = (used * 200 + safe) // (2 * safe)  # half-up whole percent
    return pd.DataFrame(
        {
            "hit": (contracted > 0) & (over >= 0),
            "extra": np.maximum(-(-over // BASIS_POINTS), 1),
            "text": "usage at "
            + pd.Series(pct, index=stat.index).astype(str)
            + "% of seats ("
            + pd.Series(used, index=stat.index).astype(str)
            + " of "
            + pd.Series(contracted, index=stat.index).astype(str)
            + ")",
        },
        index=stat.index,
    )


def _entitlement_signals(
    recent: pd.DataFrame, seats: pd.Series, config: LeadConfig
) -> list[pd.DataFrame]:
    """One signal per entitled metric: monthly use above per-seat entitlement x seats."""
    out = []
    for metric, per_seat in sorted(config.entitlements.items()):
        total = recent[recent["metric"] == metric].groupby("account_id")["quantity"].sum()
        monthly = total * DAYS_PER_MONTH / config.usage_window_days
        contracted = seats.reindex(total.index).to_numpy(dtype=np.int64)
        allowed = per_seat * contracted
        needed = np.ceil(monthly.to_numpy() / per_seat - EPSILON).astype(np.int64)
        pct = np.rint(monthly.to_numpy() * 100 / np.maximum(allowed, EPSILON)).astype(np.int64)
        text = (
            f"{metric} at "
            + pd.Series(pct, index=total.index).astype(str)
            + "% of entitlement ("
            + monthly.map("{:,.0f}".format)
            + "/month vs "
            + pd.Series(allowed, index=total.index).map("{:,.0f}".format)
            + ")"
        )
        out.append(
            pd.DataFrame(
                {
                    "hit": (contracted > 0) & (monthly.to_numpy() > allowed),
                    "extra": np.maximum(needed - contracted, 1),
                    "text": text,
                },
                index=total.index,
            )
        )
    return out


def _overage_signal(
    lines: pd.DataFrame,
    contracts: pd.DataFrame,
    accounts: pd.DataFrame,
    invoices: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    start: pd.Timestamp,
    day: pd.Timestamp,
    config: LeadConfig,
) -> pd.DataFrame:
    """Overage lines (by price id or description pattern) whose service period meets the window."""
    empty = pd.DataFrame({"hit": pd.Series(dtype=bool), "extra": [], "text": []})
    matched = pd.Series(False, index=lines.index)
    for column, patterns in (
        ("price_id", config.overage_price_id_patterns),
        ("description", config.overage_description_patterns),
    ):
        if patterns:
            combined = "|".join(f"(?:{p})" for p in patterns)
            text = lines[column].astype(object).fillna("").astype(str)
            matched |= text.str.contains(combined, case=False, regex=True)
    period_start = lines["period_start"].dt.tz_convert("UTC").dt.tz_localize(None)
    period_end = lines["period_end"].dt.tz_convert("UTC").dt.tz_localize(None)
    keep = matched & (period_start <= day) & (period_end > start)
    hits = lines[keep.to_numpy()]
    if hits.empty:
        return empty
    account = _line_accounts(hits, contracts, accounts, invoices, customers, config)
    hits = hits.assign(account_id=account).dropna(subset=["account_id"])
    if hits.empty:
        return empty
    totals = (
        hits.groupby(["account_id", "currency"])["amount_minor"].agg(["sum", "size"]).reset_index()
    )
    totals["text"] = [
        f"{format_money(int(total), currency)} on {count} line{'' if count == 1 else 's'}"
        for total, currency, count in zip(
            totals["sum"], totals["currency"], totals["size"], strict=True
        )
    ]
    text = totals.groupby("account_id")["text"].agg(", ".join)
    return pd.DataFrame({"hit": True, "extra": 1, "text": "overage billed: " + text})


def _line_accounts(
    lines: pd.DataFrame,
    contracts: pd.DataFrame,
    accounts: pd.DataFrame,
    invoices: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    config: LeadConfig,
) -> pd.Series:
    """The account of each line; NA when no link is known (or its invoice was not billed)."""
    if "account_id" in lines.columns:
        account = lines["account_id"].astype(object)
    else:
        account = pd.Series(None, index=lines.index, dtype=object)
    subs = contracts.dropna(subset=["stripe_subscription_id"]).drop_duplicates(
        "stripe_subscription_id"
    )
    by_sub = lines["subscription_id"].map(subs.set_index("stripe_subscription_id")["account_id"])
    account = account.fillna(by_sub.astype(object))
    if invoices is None:
        return account
    links = link_customers(
        customers if customers is not None else empty_frame("customers"),
        accounts,
        pd.Index(invoices["customer_id"].unique()),
    )
    invoice_account = invoices["customer_id"].map(links.set_index("customer_id")["account_id"])
    by_invoice = lines["invoice_id"].map(
        pd.Series(invoice_account.to_numpy(), index=invoices["invoice_id"])
    )
    billed = lines["invoice_id"].map(invoices.set_index("invoice_id")["status"])
    account = account.fillna(by_invoice.astype(object))
    return account.where(billed.isin(config.billed_invoice_statuses).to_numpy())


def _risk(risk_tiers: pd.DataFrame | None, config: LeadConfig) -> pd.Series:
    """Tier of each at-risk account, indexed by account_id."""
    if risk_tiers is None:
        return pd.Series(dtype=object)
    require_columns(risk_tiers, "risk_tiers frame", ["account_id", "tier"])
    risky = risk_tiers[risk_tiers["tier"].isin(config.at_risk_tiers)]
    return risky.drop_duplicates("account_id").set_index("account_id")["tier"].astype(object)
