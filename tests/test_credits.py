"""Money given back (issue 15): credit notes, credit grants and refunds in reconciliation.

Payloads: tests/fixtures/stripe/credit_note.json is a CreditNote in the shape of Stripe's
API fixture (stripe/openapi `openapi/fixtures3.json`, resource `credit_note`); charges with
`refunds.data` follow its `charge` and `refund` resources; the credit grant is an invoice
line's `pretax_credit_amounts` entry of type `credit_balance_transaction`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from revops.connectors.stripe_credits import (
    charges_with_invoices,
    credit_grants_frame,
    credit_notes_frames,
    refunds_frame,
)
from revops.frames import validate_frame
from revops.periods import parse_period
from revops.tasks.credits import Credits
from revops.tasks.outputs import summary_markdown, write_reconciliation_files
from revops.tasks.reconciliation import reconcile
from revops.tasks.reconciliation_config import ReconciliationConfig
from revops.tasks.report_html import _totals_section
from tests.builders import AS_OF, account, contract, customer, invoice, line, recon_input

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
OCTOBER = parse_period("2026-10")
NOV_1 = 1793534400  # 2026-11-01 12:00 UTC


def credit_note(**changes: object) -> dict:
    note = json.loads((FIXTURES / "credit_note.json").read_text())
    return note | changes


def charge(refunds: list[dict], amount: int = 100_000, invoice_id: str = "in_1") -> dict:
    return {
        "id": "ch_1",
        "object": "charge",
        "amount": amount,
        "amount_refunded": sum(r["amount"] for r in refunds),
        "created": NOV_1 - 86_400,
        "currency": "usd",
        "customer": "cus_A",
        "invoice": invoice_id,
        "paid": True,
        "refunded": False,
        "status": "succeeded",
        "refunds": {"object": "list", "data": refunds, "has_more": False},
    }


def refund(refund_id: str, amount: int, created: int = NOV_1) -> dict:
    return {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "charge": "ch_1",
        "created": created,
        "currency": "usd",
        "status": "succeeded",
        "reason": "requested_by_customer",
    }


def given_back(notes: list[dict] = (), charges: list[dict] = (), invoices: list[dict] = ()):
    cn, cn_lines = credit_notes_frames(list(notes))
    return Credits(
        credit_notes=validate_frame("credit_notes", cn),
        credit_note_lines=validate_frame("credit_note_lines", cn_lines),
        credit_grants=validate_frame("credit_grants", credit_grants_frame(list(invoices))),
        refunds=validate_frame("refunds", refunds_frame(list(charges))),
    )


def run(credits: Credits, lines: list[dict] | None = None, as_of: date = AS_OF):
    data = recon_input(
        accounts=[account()],
        contracts=[contract()],
        customers=[customer(account_id="001A")],
        invoices=[invoice("in_1")],
        lines=lines or [line("in_1")],
    )
    return reconcile(replace(data, credits=credits), OCTOBER, as_of, ReconciliationConfig())


def test_a_credit_note_after_payment_is_credited_and_named() -> None:
    result = run(given_back([credit_note()]))
    findings = result.findings
    assert findings["code"].tolist() == ["credited"]
    row = findings.iloc[0]
    assert (row["expected_minor"], row["billed_minor"], row["variance_minor"]) == (
        100_000,
        70_000,
        -30_000,
    )
    for part in ("cn_1QAcmePost0001", "300.00", "order_change", "ticket 4411"):
        assert part in row["detail"]
    totals = result.by_currency.set_index("currency").loc["USD"]
    assert (totals["billed_minor"], totals["credited_minor"], totals["refunded_minor"]) == (
        70_000,
        30_000,
        0,
    )


def test_a_void_credit_note_counts_for_nothing() -> None:
    result = run(given_back([credit_note(status="void", voided_at=NOV_1 + 3600)]))
    assert result.findings.empty
    assert result.by_currency.at[0, "credited_minor"] == 0


def test_a_credit_note_voided_after_the_as_of_date_still_counted_then() -> None:
    note = credit_note(status="void", voided_at=NOV_1 + 30 * 86_400)
    assert run(given_back([note])).findings["code"].tolist() == ["credited"]


def test_a_credit_note_created_after_the_as_of_date_is_not_seen() -> None:
    result = run(given_back([credit_note()]), as_of=date(2026, 10, 31))
    assert result.findings.empty


def test_a_partial_credit_note_on_one_line_of_two_credits_that_lines_period() -> None:
    lines = [
        line("in_1", quantity=5, n=1),
        line("in_1", quantity=5, n=2),
    ]
    note = credit_note()
    note["lines"]["data"][0]["invoice_line_item"] = "il_in_1_2"
    note["lines"]["data"][0]["amount"] = 10_000
    note = note | {"total": 10_000, "amount": 10_000}
    findings = run(given_back([note]), lines=lines).findings
    assert findings["code"].tolist() == ["credited"]
    assert findings.at[0, "billed_minor"] == 90_000


def test_a_custom_line_credit_spreads_pro_rata_over_the_invoice() -> None:
    note = credit_note()
    custom = note["lines"]["data"][0] | {
        "type": "custom_line_item",
        "invoice_line_item": None,
        "unit_amount": 30_000,
    }
    note["lines"]["data"] = [custom]
    lines = [line("in_1", quantity=5, n=1), line("in_1", quantity=5, n=2)]
    findings = run(given_back([note]), lines=lines).findings
    assert findings["code"].tolist() == ["credited"]
    assert findings.at[0, "billed_minor"] == 70_000


def test_a_credit_on_an_overbilled_period_that_corrects_it_is_clean() -> None:
    findings = run(given_back([credit_note()]), lines=[line("in_1", quantity=13)]).findings
    assert findings["code"].tolist() == ["quantity_mismatch"]


def test_a_credit_on_an_underbilled_period_stays_underbilled_with_the_credit_in_detail() -> None:
    findings = run(given_back([credit_note()]), lines=[line("in_1", quantity=8)]).findings
    under = findings[findings["code"] == "underbilled"].iloc[0]
    assert under["billed_minor"] == 50_000
    assert "cn_1QAcmePost0001" in under["detail"]


def test_a_credit_grant_reduces_what_was_billed() -> None:
    # An invoice line with a USD 400 credit grant applied (pretax_credit_amounts).
    record = {
        "id": "in_1",
        "currency": "usd",
        "lines": {
            "object": "list",
            "has_more": False,
            "data": [
                {
                    "id": "il_in_1_1",
                    "pretax_credit_amounts": [
                        {
                            "amount": 40_000,
                            "credit_balance_transaction": "cbtxn_1Grant",
                            "type": "credit_balance_transaction",
                        },
                        {"amount": 500, "discount": "di_1", "type": "discount"},
                    ],
                }
            ],
        },
    }
    findings = run(given_back(invoices=[record])).findings
    assert findings["code"].tolist() == ["credited"]
    assert findings.at[0, "billed_minor"] == 60_000
    assert "cbtxn_1Grant" in findings.at[0, "detail"]


def test_a_refund_without_a_credit_note_is_refunded() -> None:
    result = run(given_back(charges=[charge([refund("re_1", 100_000)])]))
    findings = result.findings
    assert findings["code"].tolist() == ["refunded"]
    row = findings.iloc[0]
    assert (row["invoice_id"], row["variance_minor"]) == ("in_1", -100_000)
    assert "re_1" in row["detail"] and "ch_1" in row["detail"]
    assert result.by_currency.at[0, "refunded_minor"] == 100_000


def test_a_refund_with_its_credit_note_is_not_counted_twice() -> None:
    note = credit_note(refunds=[{"amount_refunded": 30_000, "refund": "re_1"}])
    result = run(given_back([note], charges=[charge([refund("re_1", 30_000)])]))
    assert result.findings["code"].tolist() == ["credited"]
    totals = result.by_currency.iloc[0]
    assert (totals["credited_minor"], totals["refunded_minor"]) == (30_000, 0)


def test_a_failed_refund_and_one_after_the_as_of_date_are_not_counted() -> None:
    failed = refund("re_1", 100_000) | {"status": "failed"}
    late = refund("re_2", 100_000, created=NOV_1 + 60 * 86_400)
    assert run(given_back(charges=[charge([failed, late])])).findings.empty


def test_credit_note_mapping_keeps_reason_memo_and_line() -> None:
    notes, lines = credit_notes_frames([credit_note()])
    assert notes.at[0, "amount_minor"] == 30_000
    assert notes.at[0, "reason"] == "order_change"
    assert lines.at[0, "invoice_line_id"] == "il_in_1_1"
    assert pd.isna(notes.at[0, "refund_ids"])
    named = credit_notes_frames([credit_note(refunds=[{"refund": "re_1", "amount_refunded": 1}])])
    assert named[0].at[0, "refund_ids"] == "re_1"


def test_the_files_source_reads_credit_notes_and_refunds(tmp_path: Path) -> None:
    from revops.connectors.files import FilesSource

    (tmp_path / "credit_notes.jsonl").write_text(json.dumps(credit_note()) + "\n")
    (tmp_path / "charges.jsonl").write_text(json.dumps(charge([refund("re_1", 500)])) + "\n")
    given = FilesSource(tmp_path).money_given_back()
    assert given["credit_notes"]["credit_note_id"].tolist() == ["cn_1QAcmePost0001"]
    assert given["credit_note_lines"]["invoice_line_id"].tolist() == ["il_in_1_1"]
    assert given["refunds"]["refund_id"].tolist() == ["re_1"]
    assert given["credit_grants"].empty


def test_the_files_source_ties_basil_charges_to_invoices_by_invoice_payments(
    tmp_path: Path,
) -> None:
    from revops.connectors.files import FilesSource

    # A Charge exported on API version basil: no `invoice`; the InvoicePayment ties it
    # (fixtures3.json `invoice_payment`).
    basil = {k: v for k, v in charge([refund("re_1", 500)]).items() if k != "invoice"}
    payment = {
        "id": "inpay_1",
        "object": "invoice_payment",
        "invoice": "in_1",
        "status": "paid",
        "payment": {"type": "charge", "charge": "ch_1"},
    }
    (tmp_path / "charges.jsonl").write_text(json.dumps(basil | {"payment_intent": None}) + "\n")
    without = FilesSource(tmp_path).money_given_back()["refunds"]
    assert without["invoice_id"].isna().all()
    (tmp_path / "invoice_payments.jsonl").write_text(json.dumps(payment) + "\n")
    tied = FilesSource(tmp_path).money_given_back()["refunds"]
    assert tied["invoice_id"].tolist() == ["in_1"]


def test_a_bad_credit_note_names_file_row_and_field(tmp_path: Path) -> None:
    import pytest

    from revops.connectors.files import FilesSource
    from revops.errors import InputError

    bad = credit_note()
    del bad["invoice"]
    (tmp_path / "credit_notes.jsonl").write_text(
        json.dumps(credit_note()) + "\n" + json.dumps(bad) + "\n"
    )
    with pytest.raises(InputError) as problem:
        FilesSource(tmp_path).money_given_back()
    assert (problem.value.file, problem.value.row, problem.value.column) == (
        "credit_notes.jsonl",
        2,
        "invoice",
    )


def test_invoice_payments_tie_charges_to_invoices() -> None:
    # InvoicePayment `payment` per stripe-python's typed object (basil and later): the charge
    # itself (type charge, here expanded), or the PaymentIntent the charge belongs to.
    charges = [
        {"id": "ch_a", "payment_intent": None},
        {"id": "ch_b", "payment_intent": "pi_b"},
        {"id": "ch_c", "payment_intent": "pi_c", "invoice": "in_old"},  # older versions
        {"id": "ch_d", "payment_intent": "pi_d"},
    ]
    payments = [
        {
            "invoice": "in_a",
            "status": "paid",
            "payment": {"type": "charge", "charge": {"id": "ch_a"}},
        },
        {"invoice": {"id": "in_b"}, "status": "open", "payment": {"payment_intent": "pi_b"}},
        {"invoice": "in_c", "status": "paid", "payment": {"payment_intent": "pi_c"}},
        {"invoice": "in_d", "status": "canceled", "payment": {"payment_intent": "pi_d"}},
    ]
    tied = charges_with_invoices(charges, payments)
    assert [c.get("invoice") for c in tied] == ["in_a", "in_b", "in_old", None]


def test_matched_and_every_summary_show_billed_credited_refunded_and_net(tmp_path: Path) -> None:
    # A USD 300 credit note with no refund, and a USD 500 refund of the same invoice's charge:
    # 300 of the cash is the credit note's, 200 went back with no billing correction.
    result = run(given_back([credit_note()], charges=[charge([refund("re_9", 50_000)])]))
    assert sorted(result.findings["code"]) == ["credited", "refunded"]
    pair = result.matched.iloc[0]
    assert (
        pair["billed_minor"],
        pair["credited_minor"],
        pair["refunded_minor"],
        pair["net_billed_minor"],
    ) == (100_000, 30_000, 20_000, 50_000)
    # The same numbers as the findings.
    by_code = result.findings.set_index("code")
    assert -by_code.at["credited", "variance_minor"] == pair["credited_minor"]
    assert -by_code.at["refunded", "variance_minor"] == pair["refunded_minor"]

    write_reconciliation_files(
        result, "rec-c", summary_markdown(result, "rec-c", "files"), tmp_path
    )
    matched = pd.read_csv(tmp_path / "matched.csv")
    assert matched.loc[
        0, ["billed_minor", "credited_minor", "refunded_minor", "net_billed_minor"]
    ].tolist() == [
        100_000,
        30_000,
        20_000,
        50_000,
    ]
    summary = (tmp_path / "summary.md").read_text()
    usd = next(line for line in summary.splitlines() if line.startswith("| USD |"))
    assert "| Credited | Refunded |" in summary and "300.00" in usd and "200.00" in usd
    sheet = load_workbook(tmp_path / "reconciliation.xlsx")["Summary"]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    header = next(r for r in rows if r and r[0] == "Currency")
    usd_row = next(r for r in rows if r and r[0] == "USD")
    assert (
        usd_row[header.index("Credited")] == Decimal("300.00")
        or usd_row[header.index("Credited")] == 300
    )
    assert float(usd_row[header.index("Refunded")]) == 200
    html = _totals_section(result)  # the report's money-per-currency table
    assert "<th>Credited</th><th>Refunded</th>" in html
    assert "300.00" in html and "200.00" in html


@pytest.mark.parametrize("credited", [40_000, 100_000])
def test_a_credit_on_a_line_that_bills_no_contract_period_reduces_that_line(
    credited: int,
) -> None:
    # in_2 bills a customer that maps to no account: an unmatched invoice, then credited.
    note = credit_note(
        id="cn_1Stray",
        invoice="in_2",
        total=credited,
        amount=credited,
        lines={
            "object": "list",
            "has_more": False,
            "data": [
                credit_note()["lines"]["data"][0]
                | {"invoice_line_item": "il_in_2_1", "amount": credited, "discount_amounts": []}
            ],
        },
    )
    data = recon_input(
        accounts=[account()],
        contracts=[contract()],
        customers=[customer(account_id="001A"), customer("cus_X")],
        invoices=[invoice("in_1"), invoice("in_2", customer_id="cus_X")],
        lines=[line("in_1"), line("in_2")],
    )
    result = reconcile(
        replace(data, credits=given_back([note])), OCTOBER, AS_OF, ReconciliationConfig()
    )
    stray = result.findings[result.findings["invoice_id"] == "in_2"]
    totals = result.by_currency.set_index("currency").loc["USD"]
    assert totals["credited_minor"] == credited
    assert totals["billed_minor"] == 200_000 - credited
    if credited == 100_000:
        # Reversed whole: nothing is billed in error any more.
        assert stray.empty
        return
    assert stray["code"].tolist() == ["unmatched_invoice"]
    assert stray.iloc[0]["billed_minor"] == 60_000
    assert "cn_1Stray" in stray.iloc[0]["detail"]
    # The contract's own period is untouched by it.
    assert result.findings[result.findings["invoice_id"] == "in_1"].empty
