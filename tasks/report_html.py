"""The reconciliation report finance reads: one self-contained HTML file.

Styles, charts (inline SVG drawn here) and the table's sorting and filtering (a little vanilla
JavaScript) are all inside the file: it makes no network request, so it can be mailed, archived
or opened offline. Every value from the data is HTML-escaped.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

import pandas as pd

from revops.money import format_money
from revops.tasks.reconciliation import ReconciliationResult
from revops.tasks.reconciliation_bridge import bridge_table
from revops.tasks.report_html_assets import REPORT_CSS, REPORT_JS
from revops.tasks.report_html_evidence import evidence_html, finding_evidence
from revops.tasks.review import TEMPLATE_FILE, open_findings

__all__ = ["CODE_LABELS", "finding_evidence", "reconciliation_html"]

CODE_LABELS = {
    "missing_invoice": "Missing invoice",
    "underbilled": "Under-billed",
    "overbilled": "Over-billed",
    "price_mismatch": "Price mismatch",
    "quantity_mismatch": "Quantity mismatch",
    "currency_mismatch": "Currency mismatch",
    "duplicate_invoice": "Duplicate invoice",
    "billed_outside_contract": "Billed outside contract",
    "unmatched_invoice": "Unmatched invoice",
}


def reconciliation_html(
    result: ReconciliationResult,
    findings: pd.DataFrame,
    run_id: str,
    source: str,
    *,
    evidence: dict[str, dict[str, Any]],
    trend: pd.DataFrame,
    signoff: dict[str, Any] | None = None,
    generated_at: datetime | None = None,
) -> str:
    """The whole report as one HTML document.

    `findings` are the run's findings with `review_status`, `review_note` and `owner_id`
    columns; `trend` is Warehouse.trend() (under- and over-billed per window and currency).
    """
    title = f"Reconciliation {result.window.label}"
    signed = _signoff_badge(signoff, findings)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{REPORT_CSS}</style></head><body>",
        f"<header><h1>{escape(title)}</h1>",
        f'<p class="meta">Window {result.window.start} to {result.window.end} (end exclusive) · '
        f"as of {result.as_of} · source <code>{escape(source)}</code> · run <code>{escape(run_id)}</code>"
        + (f" · generated {generated_at:%Y-%m-%d %H:%M} UTC" if generated_at else "")
        + f'</p><p>{signed} · <a href="{TEMPLATE_FILE}" download>Decisions template (CSV)</a>'
        " to fill in and load with <code>revops review import</code></p></header>",
        _summary_cards(result, findings),
        _totals_section(result),
        _bridge_section(result.by_currency),
        _leakage_chart(result.by_currency),
        _trend_section(trend),
        _by_code_section(result.by_code),
        _exceptions_section(findings, evidence),
        f"<script>{REPORT_JS}</script></body></html>",
    ]
    return "\n".join(parts)


def _signoff_badge(signoff: dict[str, Any] | None, findings: pd.DataFrame) -> str:
    """Who signed off, and how many findings remain open (green only when none does)."""
    still = open_findings(findings) if "review_status" in findings.columns else findings
    high = int((still["severity"] == "high").sum()) if len(still) else 0
    remaining = f"{len(still)} finding{'' if len(still) == 1 else 's'} still open" + (
        f" ({high} high severity)" if high else ""
    )
    if not signoff:
        return f'<span class="badge warn">Not signed off · {escape(remaining)}</span>'
    who = (
        f"Signed off by {escape(signoff['reviewer'])} on "
        f"{pd.Timestamp(signoff['signed_at']):%Y-%m-%d}"
    )
    if still.empty:
        return f'<span class="badge ok">{who}</span>'
    return f'<span class="badge warn">{who} · {escape(remaining)}</span>'


def _summary_cards(result: ReconciliationResult, findings: pd.DataFrame) -> str:
    counts = result.counts
    reviewed = (
        int(findings["review_status"].isin(["accepted", "false_positive"]).sum())
        if len(findings)
        else 0
    )
    cards = [
        ("Contract periods due", counts.get("contract_periods_due", 0)),
        ("Clean", counts.get("contract_periods_clean", 0)),
        ("Invoices checked", counts.get("invoices_in_window", 0)),
        ("Findings", len(findings)),
        ("Needing review", len(findings) - reviewed),
    ]
    inner = "".join(
        f'<div class="card"><div class="n">{v}</div><div>{escape(k)}</div></div>' for k, v in cards
    )
    return f'<section class="cards">{inner}</section>'


def _money_cell(amount: object, currency: str) -> str:
    if amount is None or pd.isna(amount):
        return '<td class="num" data-sort="">—</td>'
    return f'<td class="num" data-sort="{int(amount)}">{escape(format_money(int(amount), currency))}</td>'


def _totals_section(result: ReconciliationResult) -> str:
    rows = "".join(
        f"<tr><td>{escape(r.currency)}</td>"
        + "".join(
            _money_cell(v, r.currency)
            for v in (
                r.expected_minor,
                r.billed_minor,
                r.underbilled_minor,
                r.overbilled_minor,
                getattr(r, "credited_minor", 0),
                getattr(r, "refunded_minor", 0),
            )
        )
        + f'<td class="num">{r.findings}</td></tr>'
        for r in result.by_currency.itertuples(index=False)
    )
    return (
        '<section id="totals"><h2>Money per currency</h2>'
        "<table><thead><tr><th>Currency</th><th>Expected</th><th>Billed</th>"
        "<th>Under-billed (leakage)</th><th>Over-billed</th><th>Credited</th><th>Refunded</th>"
        "<th>Findings</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        '<p class="note">Totals are never added across currencies.</p></section>'
    )


def _bridge_section(by_currency: pd.DataFrame) -> str:
    """Expected to billed per currency, every difference in one step (it foots)."""
    currencies, bridge = bridge_table(by_currency)
    head = "".join(f"<th>{escape(c)}</th>" for c in currencies)
    body = "".join(
        f"<tr><td>{escape(label)}</td>"
        + "".join(_money_cell(a, c) for a, c in zip(amounts, currencies, strict=True))
        + "</tr>"
        for label, amounts in bridge
    )
    return (
        '<section id="bridge"><h2>Bridge from expected to billed</h2>'
        f"<table><thead><tr><th>Step</th>{head}</tr></thead><tbody>{body}</tbody></table>"
        '<p class="note">Each column foots: expected + steps = billed.</p></section>'
    )


def _leakage_chart(by_currency: pd.DataFrame) -> str:
    """Under- vs over-billed per currency, each currency on its own scale."""
    rows = by_currency[
        (by_currency["underbilled_minor"] > 0) | (by_currency["overbilled_minor"] > 0)
    ]
    if rows.empty:
        return '<section id="leakage"><h2>Leakage</h2><p>No money at stake in this window.</p></section>'
    height = 34 * len(rows) + 20
    bars = []
    for i, r in enumerate(rows.itertuples(index=False)):
        top = max(int(r.underbilled_minor), int(r.overbilled_minor), 1)
        y = 10 + 34 * i
        under_w = 300 * int(r.underbilled_minor) / top
        over_w = 300 * int(r.overbilled_minor) / top
        bars.append(
            f'<text x="0" y="{y + 18}" class="label">{escape(r.currency)}</text>'
            f'<rect x="60" y="{y}" width="{under_w:.1f}" height="12" class="under">'
            f"<title>Under-billed {escape(format_money(int(r.underbilled_minor), r.currency))}</title></rect>"
            f'<rect x="60" y="{y + 14}" width="{over_w:.1f}" height="12" class="over">'
            f"<title>Over-billed {escape(format_money(int(r.overbilled_minor), r.currency))}</title></rect>"
            f'<text x="{66 + max(under_w, over_w):.1f}" y="{y + 18}" class="value">'
            f"−{escape(_short(r.underbilled_minor, r.currency))} / +{escape(_short(r.overbilled_minor, r.currency))}</text>"
        )
    return (
        '<section id="leakage"><h2>Leakage vs over-billing</h2>'
        f'<svg role="img" aria-label="Under- and over-billed money per currency" width="640" height="{height}">'
        + "".join(bars)
        + '</svg><p class="legend"><span class="swatch under"></span> under-billed (money not billed) '
        '<span class="swatch over"></span> over-billed (billed beyond contract)</p></section>'
    )


def _trend_section(trend: pd.DataFrame) -> str:
    if trend.empty or trend["period"].nunique() < 2:
        return (
            '<section id="trend"><h2>Trend</h2><p>The trend appears once two windows have '
            "been reconciled from this source.</p></section>"
        )
    charts = []
    for currency, group in trend.groupby("currency"):
        group = group.sort_values("window_start")
        if (group["underbilled_minor"] == 0).all() and (group["overbilled_minor"] == 0).all():
            continue
        top = max(int(group["underbilled_minor"].max()), int(group["overbilled_minor"].max()), 1)
        width = 40 * len(group) + 40
        bars = []
        for i, r in enumerate(group.itertuples(index=False)):
            x = 30 + 40 * i
            under_h = 80 * int(r.underbilled_minor) / top
            over_h = 80 * int(r.overbilled_minor) / top
            bars.append(
                f'<rect x="{x}" y="{90 - under_h:.1f}" width="14" height="{under_h:.1f}" class="under">'
                f"<title>{escape(r.period)} under-billed {escape(format_money(int(r.underbilled_minor), currency))}</title></rect>"
                f'<rect x="{x + 15}" y="{90 - over_h:.1f}" width="14" height="{over_h:.1f}" class="over">'
                f"<title>{escape(r.period)} over-billed {escape(format_money(int(r.overbilled_minor), currency))}</title></rect>"
                f'<text x="{x}" y="104" class="tick">{escape(str(r.period)[-5:])}</text>'
            )
        charts.append(
            f"<figure><figcaption>{escape(str(currency))}</figcaption>"
            f'<svg role="img" aria-label="{escape(str(currency))} trend" width="{width}" height="110">'
            + "".join(bars)
            + "</svg></figure>"
        )
    return (
        '<section id="trend"><h2>Trend across runs</h2><div class="figs">'
        + "".join(charts)
        + "</div></section>"
    )


def _by_code_section(by_code: pd.DataFrame) -> str:
    if by_code.empty:
        return '<section id="by-code"><h2>Findings per code</h2><p>No findings.</p></section>'
    rows = "".join(
        f"<tr><td>{escape(CODE_LABELS.get(r.code, r.code))}</td><td>{escape(r.currency)}</td>"
        f'<td class="num">{r.findings}</td>' + _money_cell(r.variance_minor, r.currency) + "</tr>"
        for r in by_code.itertuples(index=False)
    )
    return (
        '<section id="by-code"><h2>Findings per code</h2><table><thead><tr><th>Code</th>'
        "<th>Currency</th><th>Findings</th><th>Variance</th></tr></thead>"
        f'<tbody>{rows}</tbody></table><p class="note">A period can carry several codes, so money is '
        "not added across codes.</p></section>"
    )


def _select(name: str, label: str, values: list[str] | list[tuple[str, str]]) -> str:
    """A filter; each value its own label, or (value, label) pairs (an owner id by name)."""
    pairs = [v if isinstance(v, tuple) else (v, v) for v in values]
    options = "".join(f'<option value="{escape(v)}">{escape(t)}</option>' for v, t in pairs)
    return f'<label>{escape(label)} <select data-filter="{name}"><option value="">all</option>{options}</select></label>'


def _exceptions_section(findings: pd.DataFrame, evidence: dict[str, dict[str, Any]]) -> str:
    if findings.empty:
        return '<section id="exceptions"><h2>Exceptions</h2><p>None: every contract period reconciled.</p></section>'
    owners = _owner_choices(findings)
    filters = (
        '<div class="filters">'
        + _select("code", "Code", sorted(findings["code"].unique()))
        + _select("owner", "Owner", owners)
        + _select("currency", "Currency", sorted(findings["currency"].unique()))
        + _select("status", "Review", sorted(findings["review_status"].unique()))
        + '<span id="shown"></span></div>'
    )
    headers = [
        ("severity", "Severity"),
        ("code", "Code"),
        ("account", "Account"),
        ("contract", "Contract"),
        ("period", "Period"),
        ("currency", "Cur."),
        ("expected", "Expected"),
        ("billed", "Billed"),
        ("variance", "Variance"),
        ("status", "Review"),
        ("detail", "Detail"),
    ]
    head = "".join(f'<th data-key="{k}" tabindex="0">{escape(v)}</th>' for k, v in headers)
    rows = []
    for r in findings.itertuples(index=False):
        owner = r.owner_id if isinstance(r.owner_id, str) else ""
        status_note = f'<div class="note">{escape(r.review_note)}</div>' if r.review_note else ""
        severity_rank = {"high": 0, "medium": 1, "low": 2}.get(r.severity, 3)
        rows.append(
            f'<tr data-code="{escape(r.code)}" data-owner="{escape(owner)}" '
            f'data-currency="{escape(r.currency)}" data-status="{escape(r.review_status)}">'
            f'<td data-sort="{severity_rank}"><span class="sev {escape(r.severity)}">{escape(r.severity)}</span></td>'
            f"<td>{escape(CODE_LABELS.get(r.code, r.code))}</td>"
            + _account_cell(r)
            + f"<td>{escape(_text(r.contract_id))}</td>"
            f'<td class="period" data-sort="{r.period_start:%Y-%m-%d}">{r.period_start:%Y-%m-%d}<br>– {r.period_end:%Y-%m-%d}</td>'
            f"<td>{escape(r.currency)}</td>"
            + _money_cell(r.expected_minor, r.currency)
            + _money_cell(r.billed_minor, r.currency)
            + _money_cell(r.variance_minor, r.currency)
            + f"<td>{escape(r.review_status)}{status_note}</td>"
            + f"<td>{escape(r.detail)}"
            + f'<div class="note">Key: <code class="finding-key">{escape(r.finding_key)}</code></div>'
            + f"{evidence_html(evidence.get(r.finding_key), r)}</td></tr>"
        )
    return (
        '<section id="exceptions"><h2>Exceptions</h2>'
        + filters
        + f'<table id="exceptions-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></section>'
    )


def _owner_choices(findings: pd.DataFrame) -> list[tuple[str, str]]:
    """(owner id, what the filter shows) per owner, by name: the name where the findings
    carry one (`owner_name`), else the id."""
    named = findings.dropna(subset=["owner_id"]).drop_duplicates("owner_id")
    if "owner_name" in named.columns:
        shown = named["owner_name"].where(named["owner_name"].astype(bool), named["owner_id"])
    else:
        shown = named["owner_id"]
    return sorted(zip(named["owner_id"], shown, strict=True), key=lambda p: (p[1], p[0]))


def _account_cell(finding: Any) -> str:
    """The account's name (when known) over its id, so people read names and can still search ids."""
    name = _text(getattr(finding, "account_name", None))
    account_id = escape(_text(finding.account_id))
    if not name or name == "—":
        return f"<td>{account_id}</td>"
    return f'<td>{escape(name)}<div class="note">{account_id}</div></td>'


def _text(value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    return str(value)


def _short(amount: object, currency: str) -> str:
    return format_money(int(amount), currency).split(" ", 1)[1]
