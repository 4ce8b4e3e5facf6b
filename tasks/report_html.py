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

from revops.money import format_money, minor_to_major
from revops.tasks.reconciliation import ReconciliationResult

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


def finding_evidence(
    findings: pd.DataFrame, contracts: pd.DataFrame, lines: pd.DataFrame
) -> dict[str, dict[str, Any]]:
    """Per finding key: the contract's terms and the lines of the invoices it names."""
    wanted = set(findings["contract_id"].dropna())
    terms = contracts[contracts["contract_id"].isin(wanted)].set_index("contract_id")
    invoice_ids = findings[["finding_key", "invoice_id"]].dropna()
    exploded = invoice_ids.assign(invoice_id=invoice_ids["invoice_id"].str.split(";")).explode(
        "invoice_id"
    )
    by_invoice = lines[lines["invoice_id"].isin(set(exploded["invoice_id"]))].groupby("invoice_id")
    line_groups = {invoice: group for invoice, group in by_invoice}
    out: dict[str, dict[str, Any]] = {}
    for row in findings.itertuples(index=False):
        contract = None
        if isinstance(row.contract_id, str) and row.contract_id in terms.index:
            contract = terms.loc[row.contract_id].to_dict() | {"contract_id": row.contract_id}
        invoices = row.invoice_id.split(";") if isinstance(row.invoice_id, str) else []
        shown = [line_groups[i] for i in invoices if i in line_groups]
        out[row.finding_key] = {
            "contract": contract,
            "lines": pd.concat(shown, ignore_index=True) if shown else None,
        }
    return out


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
    signed = (
        f'<span class="badge ok">Signed off by {escape(signoff["reviewer"])} on '
        f"{pd.Timestamp(signoff['signed_at']):%Y-%m-%d}</span>"
        if signoff
        else '<span class="badge warn">Not signed off</span>'
    )
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{escape(title)}</h1>",
        f'<p class="meta">Window {result.window.start} to {result.window.end} (end exclusive) · '
        f"as of {result.as_of} · source <code>{escape(source)}</code> · run <code>{escape(run_id)}</code>"
        + (f" · generated {generated_at:%Y-%m-%d %H:%M} UTC" if generated_at else "")
        + f"</p><p>{signed}</p></header>",
        _summary_cards(result, findings),
        _totals_section(result),
        _leakage_chart(result.by_currency),
        _trend_section(trend),
        _by_code_section(result.by_code),
        _exceptions_section(findings, evidence),
        f"<script>{_JS}</script></body></html>",
    ]
    return "\n".join(parts)


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


def _select(name: str, label: str, values: list[str]) -> str:
    options = "".join(f'<option value="{escape(v)}">{escape(v)}</option>' for v in values)
    return f'<label>{escape(label)} <select data-filter="{name}"><option value="">all</option>{options}</select></label>'


def _exceptions_section(findings: pd.DataFrame, evidence: dict[str, dict[str, Any]]) -> str:
    if findings.empty:
        return '<section id="exceptions"><h2>Exceptions</h2><p>None: every contract period reconciled.</p></section>'
    owners = sorted({o for o in findings["owner_id"].dropna()})
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
            + f"{_evidence(evidence.get(r.finding_key), r)}</td></tr>"
        )
    return (
        '<section id="exceptions"><h2>Exceptions</h2>'
        + filters
        + f'<table id="exceptions-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></section>'
    )


def _account_cell(finding: Any) -> str:
    """The account's name (when known) over its id, so people read names and can still search ids."""
    name = _text(getattr(finding, "account_name", None))
    account_id = escape(_text(finding.account_id))
    if not name or name == "—":
        return f"<td>{account_id}</td>"
    return f'<td>{escape(name)}<div class="note">{account_id}</div></td>'


def _evidence(found: dict[str, Any] | None, finding: Any) -> str:
    if not found:
        return ""
    blocks = []
    contract = found.get("contract")
    if contract:
        currency = contract["currency"]
        unit = minor_to_major(int(contract["unit_price_minor"]), currency)
        end = contract["end_date"]
        blocks.append(
            "<h4>Contract terms</h4><dl>"
            f"<dt>Contract</dt><dd>{escape(contract['contract_id'])} ({escape(str(contract['status']))})</dd>"
            f"<dt>Dates</dt><dd>{contract['start_date']:%Y-%m-%d} to "
            f"{'open-ended' if pd.isna(end) else f'{end:%Y-%m-%d}'}</dd>"
            f"<dt>Billing</dt><dd>{escape(str(contract['billing_frequency']))}, {contract['quantity']} × "
            f"{escape(currency)} {unit:,}/month less {contract['discount_pct']:g}%</dd>"
            f"<dt>Subscription</dt><dd>{escape(_text(contract.get('stripe_subscription_id')))}</dd></dl>"
        )
    lines = found.get("lines")
    if lines is not None and len(lines):
        rows = "".join(
            f"<tr><td>{escape(r.invoice_id)}</td><td>{escape(_text(r.description))}</td>"
            f"<td>{r.period_start:%Y-%m-%d} – {r.period_end:%Y-%m-%d}</td>"
            f'<td class="num">{_text(r.quantity)}</td>'
            f'<td class="num">{escape(format_money(int(r.unit_amount_minor), r.currency)) if pd.notna(r.unit_amount_minor) else "—"}</td>'
            f'<td class="num">{escape(format_money(int(r.amount_minor) - int(r.discount_minor), r.currency))}</td>'
            f"<td>{'proration' if r.proration else escape(r.line_type)}</td></tr>"
            for r in lines.itertuples(index=False)
        )
        blocks.append(
            "<h4>Invoice lines</h4><table><thead><tr><th>Invoice</th><th>Line</th><th>Service</th>"
            "<th>Qty</th><th>Unit</th><th>Net</th><th>Kind</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    if not blocks:
        return ""
    return f"<details><summary>evidence</summary>{''.join(blocks)}</details>"


def _text(value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    return str(value)


def _short(amount: object, currency: str) -> str:
    return format_money(int(amount), currency).split(" ", 1)[1]


_CSS = """
:root { --ink:#1b2430; --muted:#5b6675; --line:#d9dee5; --under:#c0392b; --over:#d68910; --ok:#1e8449; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0 auto; padding: 24px; max-width: 1400px; }
h1 { margin: 0 0 4px; font-size: 24px; } h2 { font-size: 18px; margin: 28px 0 10px; }
h4 { margin: 10px 0 4px; font-size: 13px; }
.meta, .note, .legend { color: var(--muted); font-size: 12px; }
code { background: #f2f4f7; padding: 1px 4px; border-radius: 3px; }
.badge { display: inline-block; padding: 2px 8px; border-radius: 10px; font-size: 12px; color: #fff; }
.badge.ok { background: var(--ok); } .badge.warn { background: var(--over); }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin-top: 16px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 150px; }
.card .n { font-size: 22px; font-weight: 600; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f7f8fa; font-weight: 600; } th[data-key] { cursor: pointer; user-select: none; }
th[data-dir="asc"]::after { content: " ▲"; } th[data-dir="desc"]::after { content: " ▼"; }
td.period { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.sev { padding: 1px 6px; border-radius: 4px; font-size: 12px; color: #fff; }
.sev.high { background: var(--under); } .sev.medium { background: var(--over); } .sev.low { background: #7f8c8d; }
.filters { display: flex; gap: 14px; align-items: center; margin-bottom: 8px; flex-wrap: wrap; }
details summary { cursor: pointer; color: #2e6da4; font-size: 12px; margin-top: 4px; }
details table { margin: 4px 0 8px; font-size: 12px; } dl { display: grid; grid-template-columns: 110px 1fr; margin: 0; }
dt { color: var(--muted); } dd { margin: 0; }
svg .under, .swatch.under { fill: var(--under); background: var(--under); }
svg .over, .swatch.over { fill: var(--over); background: var(--over); }
svg .label { font-size: 13px; font-weight: 600; } svg .value, svg .tick { font-size: 11px; fill: var(--muted); }
.swatch { display: inline-block; width: 10px; height: 10px; margin-left: 8px; }
.figs { display: flex; gap: 24px; flex-wrap: wrap; } figure { margin: 0; } figcaption { font-weight: 600; }
"""

_JS = """
(function () {
  var table = document.getElementById('exceptions-table');
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var shown = document.getElementById('shown');
  function value(row, index) {
    var cell = row.cells[index];
    var sort = cell.getAttribute('data-sort');
    return sort !== null ? sort : cell.textContent.trim();
  }
  function applyFilters() {
    var filters = document.querySelectorAll('select[data-filter]');
    var visible = 0;
    rows.forEach(function (row) {
      var keep = true;
      filters.forEach(function (select) {
        if (select.value && row.getAttribute('data-' + select.getAttribute('data-filter')) !== select.value) { keep = false; }
      });
      row.hidden = !keep;
      if (keep) { visible += 1; }
    });
    shown.textContent = visible + ' of ' + rows.length + ' shown';
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
    function sort() {
      var dir = th.getAttribute('data-dir') === 'asc' ? 'desc' : 'asc';
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (other) { other.removeAttribute('data-dir'); });
      th.setAttribute('data-dir', dir);
      rows.sort(function (a, b) {
        var x = value(a, index), y = value(b, index);
        var nx = parseFloat(x), ny = parseFloat(y);
        var order = (!isNaN(nx) && !isNaN(ny) && String(nx) === x && String(ny) === y) ? nx - ny : x.localeCompare(y);
        return dir === 'asc' ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    }
    th.addEventListener('click', sort);
    th.addEventListener('keydown', function (event) { if (event.key === 'Enter') { sort(); } });
  });
  document.querySelectorAll('select[data-filter]').forEach(function (select) {
    select.addEventListener('change', applyFilters);
  });
  applyFilters();
})();
"""
