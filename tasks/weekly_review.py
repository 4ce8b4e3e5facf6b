"""The weekly ops review: the KPIs leaders look at, as plain functions on frames.

Case backlog by age and priority, SLA breaches, open disputes, accounts at risk (new this week,
still at risk), leads handed off, and the reconciliation leakage trend. No Prefect here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from html import escape

import numpy as np
import pandas as pd

from revops.escaping import markdown_text
from revops.money import format_money
from revops.tasks.report_html_assets import REPORT_CSS
from revops.tasks.sla_config import SlaConfig

OPEN_DISPUTE_STATUSES = (
    "warning_needs_response",
    "needs_response",
    "warning_under_review",
    "under_review",
)


# Salesforce's standard Case priorities, most severe first; anything else sorts after them.
PRIORITY_ORDER = ("Critical", "Urgent", "High", "Medium", "Low")
# Column headers people read, in the markdown and the HTML page.
LABELS = {
    "priority": "Priority",
    "open": "Open",
    "cases": "Cases due",
    "first_response_breaches": "First-response breaches",
    "resolution_breaches": "Resolution breaches",
    "breached_cases": "Breached cases",
    "open_past_resolution_target": "Open past resolution target",
    "currency": "Currency",
    "disputes": "Disputes",
    "amount": "Amount",
    "evidence_due_within_7_days": "Evidence due within 7 days",
    "period": "Period",
    "underbilled": "Under-billed",
    "overbilled": "Over-billed",
}


def _instant(day: date) -> pd.Timestamp:
    return pd.Timestamp(day, tz="UTC")


def by_priority(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by the priority's severity (Critical, Urgent, High, Medium, Low, others)."""
    rank = {p.lower(): i for i, p in enumerate(PRIORITY_ORDER)}
    order = frame["priority"].str.lower().map(rank).fillna(len(rank))
    return (
        frame.assign(_rank=order.to_numpy())
        .sort_values(["_rank", "priority"], kind="stable")
        .drop(columns="_rank")
        .reset_index(drop=True)
    )


def case_backlog(cases: pd.DataFrame, as_of: date, buckets: list[int]) -> pd.DataFrame:
    """Open cases (as of the start of `as_of`) by age bucket and priority."""
    start = _instant(as_of)
    open_cases = cases[
        (cases["created_at"] < start) & (cases["closed_at"].isna() | (cases["closed_at"] >= start))
    ]
    age = (start - open_cases["created_at"]).dt.days.to_numpy()
    edges = [*buckets, np.iinfo(np.int64).max]
    labels = [f"≤{b} days" for b in buckets] + [f">{buckets[-1]} days"]
    bucket = pd.Categorical(
        np.array(labels)[np.searchsorted(edges, age, side="left")], categories=labels
    )
    priority = open_cases["priority"].fillna("(none)").to_numpy()
    table = pd.crosstab(
        pd.Series(priority, name="priority"), pd.Series(bucket, name="age"), dropna=False
    )
    table["open"] = table.sum(axis=1)
    return by_priority(table.reset_index())


def sla_breaches(cases: pd.DataFrame, as_of: date, sla: SlaConfig) -> pd.DataFrame:
    """Per priority, the week before `as_of`: cases with a target due in the week, breaches of
    first response and of resolution whose target passed in the week unmet, and breached
    cases counted once (a case missing both targets is one breached case); plus the cases
    open past their resolution target now, whenever it passed."""
    start = _instant(as_of)
    week_start = start - pd.Timedelta(days=7)
    seen = cases[cases["created_at"] < start]
    priority = seen["priority"].fillna("")
    first_hours = priority.map(lambda p: sla.target(p).first_response_hours).astype(float)
    resolve_hours = priority.map(lambda p: sla.target(p).resolution_hours).astype(float)
    first_due = seen["created_at"] + pd.to_timedelta(first_hours, unit="h")
    resolve_due = seen["created_at"] + pd.to_timedelta(resolve_hours, unit="h")
    answered = seen["first_response_at"].notna() & (seen["first_response_at"] < start)
    closed = seen["closed_at"].notna() & (seen["closed_at"] < start)
    first_missed = np.where(answered, seen["first_response_at"] > first_due, first_due < start)
    resolve_missed = np.where(closed, seen["closed_at"] > resolve_due, resolve_due < start)
    first_in_week = ((first_due >= week_start) & (first_due < start)).to_numpy()
    resolve_in_week = ((resolve_due >= week_start) & (resolve_due < start)).to_numpy()
    first_breach = first_missed & first_in_week
    resolve_breach = resolve_missed & resolve_in_week
    frame = pd.DataFrame(
        {
            "priority": priority.replace("", "(none)").to_numpy(),
            "cases": (first_in_week | resolve_in_week).astype(int),
            "first_response_breaches": first_breach.astype(int),
            "resolution_breaches": resolve_breach.astype(int),
            "breached_cases": (first_breach | resolve_breach).astype(int),
            "open_past_resolution_target": (
                ~closed.to_numpy() & (resolve_due < start).to_numpy()
            ).astype(int),
        }
    )
    return by_priority(frame.groupby("priority", as_index=False).sum())


def open_disputes(disputes: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Open disputes per currency: count, amount, and how many need evidence within 7 days."""
    start = _instant(as_of)
    live = disputes[
        disputes["status"].isin(OPEN_DISPUTE_STATUSES) & (disputes["created_at"] < start)
    ]
    due_soon = live["evidence_due_by"].notna() & (
        live["evidence_due_by"] < start + pd.Timedelta(days=7)
    )
    frame = pd.DataFrame(
        {
            "currency": live["currency"].to_numpy(),
            "disputes": 1,
            "amount_minor": live["amount_minor"].to_numpy(dtype=np.int64),
            "evidence_due_within_7_days": due_soon.to_numpy().astype(int),
        }
    )
    return frame.groupby("currency", as_index=False).sum()


def risk_movement(now: pd.DataFrame | None, week_ago: pd.DataFrame | None) -> dict[str, list[str]]:
    """Accounts at risk now: new this week, and still at risk since a week ago."""
    if now is None:
        return {"new": [], "still": []}
    at_risk = set(now.loc[now["tier"] == "at_risk", "account_id"])
    before = (
        set()
        if week_ago is None
        else set(week_ago.loc[week_ago["tier"] == "at_risk", "account_id"])
    )
    return {"new": sorted(at_risk - before), "still": sorted(at_risk & before)}


def leads_this_week(runs: pd.DataFrame, opportunities: pd.DataFrame) -> dict[str, int]:
    """Leads created or updated by the week's handoffs, and where RevOps' opportunities stand."""
    out: dict[str, int] = {}
    if not runs.empty and "dry_run" in runs.columns:
        # a dry run wrote nothing to the CRM: its "created" leads were never created
        runs = runs[~runs["dry_run"].fillna(False).astype(bool)]
    if not runs.empty:
        live = runs.sort_values("as_of").drop_duplicates("as_of", keep="last")
        for column in live.columns:
            if column.endswith(("_created", "_updated")):
                out[column] = int(live[column].fillna(0).sum())
    ours = opportunities[opportunities["revops_key"].notna()]
    out["open_opportunities_from_revops"] = int((~ours["is_closed"]).sum())
    out["closed_opportunities_from_revops"] = int(ours["is_closed"].sum())
    return out


def headline(
    backlog: pd.DataFrame, sla: pd.DataFrame, disputes: pd.DataFrame, risk: dict[str, list[str]]
) -> dict[str, int]:
    """The review's headline counts (the cards), compared week over week."""
    return {
        "Open cases": int(backlog["open"].sum()) if not backlog.empty else 0,
        "SLA-breached cases": int(sla["breached_cases"].sum()) if not sla.empty else 0,
        "Open disputes": int(disputes["disputes"].sum()) if not disputes.empty else 0,
        "At risk": len(risk["new"]) + len(risk["still"]),
        "New at risk": len(risk["new"]),
    }


def account_names(accounts: pd.DataFrame) -> dict[str, str]:
    """Account id -> its name, with the owner's name when the CRM gives one (`owner_name`)."""
    names = accounts["name"].fillna("").astype(str)
    if "owner_name" in accounts.columns:
        owner = accounts["owner_name"].fillna("").astype(str)
        names = names.where(owner == "", names + ", owner " + owner)
    return {a: n for a, n in zip(accounts["account_id"], names, strict=True) if n}


def leakage_rows(trend: pd.DataFrame) -> pd.DataFrame:
    """The leakage trend without windows where nothing was under- or over-billed."""
    if trend.empty:
        return trend
    money = (trend["underbilled_minor"] != 0) | (trend["overbilled_minor"] != 0)
    return trend[money].sort_values(["window_start", "currency"]).reset_index(drop=True)


@dataclass(frozen=True)
class WeeklyReview:
    """Everything the weekly review shows."""

    as_of: date
    source: str
    backlog: pd.DataFrame
    sla: pd.DataFrame
    disputes: pd.DataFrame
    risk: dict[str, list[str]]
    leads: dict[str, int]
    leakage: pd.DataFrame  # Warehouse.trend(): under-/over-billed per window and currency
    has_first_response: bool
    health: str = ""  # markdown sections from tasks.health_review (revenue, MRR, hygiene)
    previous: dict[str, int] | None = None  # headline() a week earlier
    names: dict[str, str] | None = None  # account id -> "Name (owner)" for people

    def account(self, account_id: str) -> str:
        """An account as people read it: its name (and owner), then the id."""
        named = (self.names or {}).get(account_id)
        return f"{named} ({account_id})" if named else account_id

    def cards(self) -> list[tuple[str, int, str]]:
        """(label, value, change since a week earlier) for each headline count."""
        now = headline(self.backlog, self.sla, self.disputes, self.risk)
        out = []
        for label, value in now.items():
            before = (self.previous or {}).get(label)
            change = "" if before is None else f"{value - before:+d} vs last week"
            out.append((label, value, change))
        return out


def _numeric(frame: pd.DataFrame, column: str) -> bool:
    return column in _MONEY_SHOWN or pd.api.types.is_numeric_dtype(frame[column])


def _label(column: object) -> str:
    return LABELS.get(str(column), str(column))


def _markdown_table(frame: pd.DataFrame) -> list[str]:
    if frame.empty:
        return ["None."]
    header = "| " + " | ".join(_label(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---:" if _numeric(frame, c) else "---" for c in frame.columns) + "|"
    return [
        header,
        rule,
        *(
            "| "
            + " | ".join(
                str(v) if _numeric(frame, c) or c == "period" else markdown_text(str(v))
                for c, v in zip(frame.columns, row, strict=True)
            )
            + " |"
            for row in frame.itertuples(index=False)
        ),
    ]


_MONEY_SHOWN = {"amount", "underbilled", "overbilled"}


def _money_frame(frame: pd.DataFrame) -> pd.DataFrame:
    shown = frame.copy()
    for column in [c for c in shown.columns if c.endswith("_minor")]:
        shown[column.removesuffix("_minor")] = [
            format_money(int(v), c) for v, c in zip(shown[column], shown["currency"], strict=True)
        ]
        shown = shown.drop(columns=column)
    return shown


def _trend_frame(review: WeeklyReview) -> pd.DataFrame:
    rows = leakage_rows(review.leakage)
    return _money_frame(rows[["period", "currency", "underbilled_minor", "overbilled_minor"]])


def weekly_markdown(review: WeeklyReview) -> str:
    """The review as markdown (the Prefect artifact)."""
    week = f"{review.as_of - timedelta(days=7)} to {review.as_of}"
    lines = [
        f"# Weekly ops review, week to {review.as_of}",
        "",
        f"Source `{markdown_text(review.source)}`, {week}.",
        "",
        "| | This week | Change |",
        "|---|---:|---:|",
        *(f"| {label} | {value} | {change or '—'} |" for label, value, change in review.cards()),
        "",
    ]
    lines += ["## Case backlog (open cases by age)", "", *_markdown_table(review.backlog), ""]
    lines += ["## SLA breaches this week", ""]
    if not review.has_first_response:
        lines += [
            "First response is not tracked in this CRM export: only resolution is checked.",
            "",
        ]
    lines += [*_markdown_table(review.sla), ""]
    lines += ["## Open disputes", "", *_markdown_table(_money_frame(review.disputes)), ""]
    new, still = review.risk["new"], review.risk["still"]
    lines += [
        "## Accounts at risk",
        "",
        f"{len(new)} new this week, {len(still)} still at risk.",
        "",
    ]
    lines += [f"- **new** {markdown_text(review.account(a))}" for a in new]
    lines += [f"- {markdown_text(review.account(a))}" for a in still]
    lines += [
        "",
        "## Leads",
        "",
        *(f"- {k.replace('_', ' ')}: {v}" for k, v in review.leads.items()),
        "",
    ]
    lines += ["## Reconciliation leakage trend", ""]
    trend = _trend_frame(review) if not review.leakage.empty else None
    if trend is None:
        lines.append("No reconciliation runs yet.")
    elif trend.empty:
        lines.append("No money under- or over-billed in any reconciled window.")
    else:
        lines += _markdown_table(trend)
    if review.health:
        lines += ["", review.health]
    return "\n".join(lines) + "\n"


def weekly_html(review: WeeklyReview) -> str:
    """The same review as a self-contained HTML page in the reconciliation report's style."""

    def table(frame: pd.DataFrame) -> str:
        if frame.empty:
            return "<p>None.</p>"
        numeric = [_numeric(frame, c) for c in frame.columns]
        head = "".join(
            f"<th{' class=num' if n else ''}>{escape(_label(c))}</th>"
            for c, n in zip(frame.columns, numeric, strict=True)
        )
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td{' class=num' if n else ''}>{escape(str(v))}</td>"
                for v, n in zip(row, numeric, strict=True)
            )
            + "</tr>"
            for row in frame.itertuples(index=False)
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"

    card_html = "".join(
        f'<div class="card"><div class="n">{v}</div><div>{escape(k)}</div>'
        f'<div class="note">{escape(change)}</div></div>'
        for k, v, change in review.cards()
    )
    note = (
        ""
        if review.has_first_response
        else '<p class="note">First response is not tracked in this CRM export: only resolution is checked.</p>'
    )
    leads = "".join(f"<li>{escape(k.replace('_', ' '))}: {v}</li>" for k, v in review.leads.items())
    at_risk = "".join(
        f"<li><strong>new</strong> {escape(review.account(a))}</li>" for a in review.risk["new"]
    ) + "".join(f"<li>{escape(review.account(a))}</li>" for a in review.risk["still"])
    trend = _trend_frame(review) if not review.leakage.empty else None
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>Weekly ops review {review.as_of}</title><style>{REPORT_CSS}</style></head><body>",
            f"<header><h1>Weekly ops review, week to {review.as_of}</h1>",
            f'<p class="meta">Source <code>{escape(review.source)}</code></p></header>',
            f'<section class="cards">{card_html}</section>',
            "<h2>Case backlog (open cases by age)</h2>",
            table(review.backlog),
            "<h2>SLA breaches this week</h2>",
            note,
            table(review.sla),
            "<h2>Open disputes</h2>",
            table(_money_frame(review.disputes)),
            "<h2>Accounts at risk</h2>",
            f"<p>{len(review.risk['new'])} new this week, {len(review.risk['still'])} still at risk.</p>",
            f"<ul>{at_risk}</ul>",
            f"<h2>Leads</h2><ul>{leads}</ul>",
            "<h2>Reconciliation leakage trend</h2>",
            "<p>No reconciliation runs yet.</p>"
            if trend is None
            else table(trend)
            if not trend.empty
            else "<p>No money under- or over-billed in any reconciled window.</p>",
            f"<h2>Health, revenue and CRM hygiene</h2><pre>{escape(review.health)}</pre>"
            if review.health
            else "",
            "</body></html>",
        ]
    )
