"""The evidence under each exception of report.html: record links, contract terms, lines."""

from __future__ import annotations

from html import escape
from typing import Any

import pandas as pd

from revops.frames import isin
from revops.money import format_money, minor_to_major


def finding_evidence(
    findings: pd.DataFrame, contracts: pd.DataFrame, lines: pd.DataFrame
) -> dict[str, dict[str, Any]]:
    """Per finding key: the contract's terms and the rows (HTML) of the lines of the invoices
    it names. Each line is rendered once, however many findings show it."""
    wanted = set(findings["contract_id"].dropna())
    chosen = contracts[isin(contracts["contract_id"], wanted)].drop_duplicates("contract_id")
    terms = chosen.set_index("contract_id").to_dict("index")
    invoice_ids = findings[["finding_key", "invoice_id"]].dropna()
    exploded = invoice_ids.assign(invoice_id=invoice_ids["invoice_id"].str.split(";")).explode(
        "invoice_id"
    )
    shown = lines[lines["invoice_id"].isin(set(exploded["invoice_id"]))]
    rows_of: dict[str, list[str]] = {}
    for line in shown.itertuples(index=False):
        rows_of.setdefault(line.invoice_id, []).append(_line_row(line))
    out: dict[str, dict[str, Any]] = {}
    for key, contract_id, invoice_id in zip(
        findings["finding_key"], findings["contract_id"], findings["invoice_id"], strict=True
    ):
        contract = None
        if isinstance(contract_id, str) and contract_id in terms:
            contract = terms[contract_id] | {"contract_id": contract_id}
        invoices = invoice_id.split(";") if isinstance(invoice_id, str) else []
        rows = "".join("".join(rows_of[i]) for i in invoices if i in rows_of)
        out[key] = {"contract": contract, "line_rows": rows or None}
    return out


def _line_row(r: Any) -> str:
    return (
        f"<tr><td>{escape(r.invoice_id)}</td><td>{escape(_text(r.description))}</td>"
        f"<td>{r.period_start:%Y-%m-%d} – {r.period_end:%Y-%m-%d}</td>"
        f'<td class="num">{_text(r.quantity)}</td>'
        f'<td class="num">{escape(format_money(int(r.unit_amount_minor), r.currency)) if pd.notna(r.unit_amount_minor) else "—"}</td>'
        f'<td class="num">{escape(format_money(int(r.amount_minor) - int(r.discount_minor), r.currency))}</td>'
        f"<td>{'proration' if r.proration else escape(r.line_type)}</td></tr>"
    )


def evidence_html(found: dict[str, Any] | None, finding: Any) -> str:
    """A finding's evidence: links to its records, the contract's terms, the invoice lines."""
    links = _links(finding)
    blocks = [links] if links else []
    found = found or {}
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
    rows = found.get("line_rows")
    if rows:
        blocks.append(
            "<h4>Invoice lines</h4><table><thead><tr><th>Invoice</th><th>Line</th><th>Service</th>"
            "<th>Qty</th><th>Unit</th><th>Net</th><th>Kind</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    if not blocks:
        return ""
    return f"<details><summary>evidence</summary>{''.join(blocks)}</details>"


_LINKS = (
    ("stripe_invoice_url", "Stripe invoice"),
    ("stripe_customer_url", "Stripe customer"),
    ("salesforce_account_url", "Salesforce account"),
    ("salesforce_contract_url", "Salesforce contract"),
)


def _links(finding: Any) -> str:
    """Links to the finding's records (revops.links); every URL escaped as an attribute."""
    anchors = []
    for column, label in _LINKS:
        value = getattr(finding, column, None)
        if not isinstance(value, str) or not value:
            continue
        for url in value.split(" "):
            target = url.rsplit("/", 2)[-2] if url.endswith("/view") else url.rsplit("/", 1)[-1]
            anchors.append(
                f'<a href="{escape(url, quote=True)}" target="_blank" rel="noopener noreferrer">'
                f"{escape(label)} {escape(target)}</a>"
            )
    if not anchors:
        return ""
    return '<h4>Open in</h4><p class="links">' + " · ".join(anchors) + "</p>"


def _text(value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    return str(value)
