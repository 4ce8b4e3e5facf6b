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

from revops.money import format_money
from revops.tasks.report_html_assets import REPORT_CSS
from revops.tasks.sla_config import SlaConfig

OPEN_DISPUTE_STATUSES = (
    "warning_needs_response",
    "needs_response",
    "warning_under_review",
    "under_review",
)


def _instant(day: date) -> pd.Timestamp:
    return pd.Timestamp(day, tz="UTC")


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
    return table.reset_index()


def sla_breaches(cases: pd.DataFrame, as_of: date, sla: SlaConfig) -> pd.DataFrame:
    """Per priority: cases, first-response and resolution breaches (late, or overdue open)."""
    start = _instant(as_of)
    seen = cases[cases["created_at"] < start]
    priority = seen["priority"].fillna("")
    first_hours = priority.map(lambda p: sla.target(p).first_response_hours).astype(float)
    resolve_hours = priority.map(lambda p: sla.target(p).resolution_hours).astype(float)
    first_due = seen["created_at"] + pd.to_timedelta(first_hours, unit="h")
    resolve_due = seen["created_at"] + pd.to_timedelta(resolve_hours, unit="h")
    answered = seen["first_response_at"].notna() & (seen["first_response_at"] < start)
    closed = seen["closed_at"].notna() & (seen["closed_at"] < start)
    first_breach = np.where(answered, seen["first_response_at"] > first_due, first_due < start)
    resolve_breach = np.where(closed, seen["closed_at"] > resolve_due, resolve_due < start)
    frame = pd.DataFrame(
        {
            "priority": priority.replace("", "(none)").to_numpy(),
            "cases": 1,
            "first_response_breaches": first_breach.astype(int),
            "resolution_breaches": resolve_breach.astype(int),
            "open_past_resolution_target": (
                ~closed.to_numpy() & (resolve_due < start).to_numpy()
            ).astype(int),
        }
    )
    return frame.groupby("priority", as_index=False).sum()


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
    if not runs.empty:
        live = runs.sort_values("as_of").drop_duplicates("as_of", keep="last")
        for column in live.columns:
            if column.endswith(("_created", "_updated")):
                out[column] = int(live[column].fillna(0).sum())
    ours = opportunities[opportunities["revops_key"].notna()]
    out["open_opportunities_from_revops"] = int((~ours["is_closed"]).sum())
    out["closed_opportunities_from_revops"] = int(ours["is_closed"].sum())
    return out


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


def _markdown_table(frame: pd.DataFrame) -> list[str]:
    if frame.empty:
        return ["None."]
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    return [
        header,
        rule,
        *("| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)),
    ]


def _money_frame(frame: pd.DataFrame, amount: str = "amount_minor") -> pd.DataFrame:
    shown = frame.copy()
    for column in [c for c in shown.columns if c.endswith("_minor")]:
        shown[column.removesuffix("_minor")] = [
            format_money(int(v), c) for v, c in zip(shown[column], shown["currency"], strict=True)
        ]
        shown = shown.drop(columns=column)
    return shown


def weekly_markdown(review: WeeklyReview) -> str:
    """The review as markdown (the Prefect artifact)."""
    week = f"{review.as_of - timedelta(days=7)} to {review.as_of}"
    lines = [
        f"# Weekly ops review, week to {review.as_of}",
        "",
        f"Source `{review.source}`, {week}.",
        "",
    ]
    lines += ["## Case backlog (open cases by age)", "", *_markdown_table(review.backlog), ""]
    lines += ["## SLA breaches", ""]
    if not review.has_first_response:
        lines += [
            "First response is not tracked in this CRM export: only resolution is checked.",
            "",
        ]
    lines += [*_markdown_table(review.sla), ""]
    lines += ["## Open disputes", "", *_markdown_table(_money_frame(review.disputes)), ""]
    lines += [
        "## Accounts at risk",
        "",
        f"{len(review.risk['new'])} new this week, {len(review.risk['still'])} still at risk.",
        "",
    ]
    if review.risk["new"]:
        lines += ["New: " + ", ".join(review.risk["new"][:30]), ""]
    lines += [
        "## Leads",
        "",
        *(f"- {k.replace('_', ' ')}: {v}" for k, v in review.leads.items()),
        "",
    ]
    trend = review.leakage
    lines += ["## Reconciliation leakage trend", ""]
    lines += (
        _markdown_table(
            _money_frame(trend[["period", "currency", "underbilled_minor", "overbilled_minor"]])
        )
        if not trend.empty
        else ["No reconciliation runs yet."]
    )
    if review.health:
        lines += ["", review.health]
    return "\n".join(lines) + "\n"


def weekly_html(review: WeeklyReview) -> str:
    """The same review as a self-contained HTML page in the reconciliation report's style."""

    def table(frame: pd.DataFrame) -> str:
        if frame.empty:
            return "<p>None.</p>"
        head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
        rows = "".join(
            "<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>"
            for row in frame.itertuples(index=False)
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"

    cards = [
        ("Open cases", int(review.backlog["open"].sum()) if not review.backlog.empty else 0),
        (
            "SLA breaches",
            int(review.sla[["first_response_breaches", "resolution_breaches"]].sum().sum())
            if not review.sla.empty
            else 0,
        ),
        (
            "Open disputes",
            int(review.disputes["disputes"].sum()) if not review.disputes.empty else 0,
        ),
        ("New at risk", len(review.risk["new"])),
        ("Still at risk", len(review.risk["still"])),
    ]
    card_html = "".join(
        f'<div class="card"><div class="n">{v}</div><div>{escape(k)}</div></div>' for k, v in cards
    )
    trend = review.leakage
    note = (
        ""
        if review.has_first_response
        else '<p class="note">First response is not tracked in this CRM export: only resolution is checked.</p>'
    )
    leads = "".join(f"<li>{escape(k.replace('_', ' '))}: {v}</li>" for k, v in review.leads.items())
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
            "<h2>SLA breaches</h2>",
            note,
            table(review.sla),
            "<h2>Open disputes</h2>",
            table(_money_frame(review.disputes)),
            "<h2>Accounts at risk</h2>",
            f"<p>{len(review.risk['new'])} new this week: {escape(', '.join(review.risk['new'][:30])) or 'none'}</p>",
            f"<p>{len(review.risk['still'])} still at risk.</p>",
            f"<h2>Leads</h2><ul>{leads}</ul>",
            "<h2>Reconciliation leakage trend</h2>",
            table(
                _money_frame(trend[["period", "currency", "underbilled_minor", "overbilled_minor"]])
            )
            if not trend.empty
            else "<p>No reconciliation runs yet.</p>",
            f"<h2>Health, revenue and CRM hygiene</h2><pre>{escape(review.health)}</pre>"
            if review.health
            else "",
            "</body></html>",
        ]
    )
