"""Links from findings to their records: Stripe dashboard URLs (test vs live mode) and
Salesforce record URLs, in the CSV, the workbook (hyperlink cells, never formulas) and the
report's evidence; ids not shaped like the system's own never become links."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from revops.connectors.demo import DemoSource
from revops.connectors.files import FilesSource
from revops.connectors.record_links import DEMO_SALESFORCE_BASE, record_links
from revops.links import LINK_COLUMNS, RecordLinks, link_columns, stripe_live_from_key
from revops.tasks.outputs import write_reconciliation_files
from revops.tasks.report_html_evidence import evidence_html
from tests.test_demo import reconcile_demo

ORG = "https://acme.my.salesforce.com"
HOSTILE = [
    'in_1"><script>alert(1)</script>',
    "javascript:alert(1)",
    "in_../../settings",
    '=HYPERLINK("https://evil.example","x")',
    "https://evil.example/in_1",
    "",
]


def test_stripe_links_follow_the_dashboards_test_and_live_paths() -> None:
    # Dashboard paths as Stripe shows them: /test/invoices/in_… in test mode, /invoices/in_… live.
    test, live = RecordLinks(stripe_live=False), RecordLinks(stripe_live=True)
    assert test.stripe("invoices", "in_1Q2w3E") == (
        "https://dashboard.stripe.com/test/invoices/in_1Q2w3E"
    )
    assert live.stripe("customers", "cus_9s6XKzkNRiz8i3") == (
        "https://dashboard.stripe.com/customers/cus_9s6XKzkNRiz8i3"
    )
    assert RecordLinks(stripe_live=None).stripe("invoices", "in_1") is None
    assert test.stripe("invoices", "cus_1") is None  # a customer id is no invoice
    assert stripe_live_from_key("sk_live_abc") and stripe_live_from_key("rk_live_abc")
    assert not stripe_live_from_key("sk_test_abc")


@pytest.mark.parametrize("value", HOSTILE)
def test_ids_from_the_data_never_choose_a_link(value: str) -> None:
    links = RecordLinks(stripe_live=False, salesforce_base=ORG)
    assert links.stripe("invoices", value) is None
    assert links.stripe("customers", value) is None
    assert links.salesforce("Account", value) is None


def test_salesforce_links_use_the_orgs_lightning_record_path() -> None:
    links = RecordLinks(salesforce_base=ORG + "/")
    assert links.salesforce("Account", "001000000000001AAA") == (
        f"{ORG}/lightning/r/Account/001000000000001AAA/view"
    )
    assert links.salesforce("Contract", "800000000000001") == (
        f"{ORG}/lightning/r/Contract/800000000000001/view"
    )
    assert links.salesforce("Account", "001000000001") is None  # neither 15 nor 18 characters
    assert RecordLinks().salesforce("Account", "001000000000001AAA") is None
    for base in ("http://acme.my.salesforce.com", "javascript:alert(1)", ORG + "?x=1"):
        with pytest.raises(ValueError, match="https://"):
            RecordLinks(salesforce_base=base)


def test_link_columns_name_each_findings_records() -> None:
    accounts = pd.DataFrame(
        {
            "account_id": ["001000000000001AAA", "001000000000002AAA"],
            "stripe_customer_id": ["cus_A1", None],
        }
    )
    invoices = pd.DataFrame({"invoice_id": ["in_orphan1"], "customer_id": ["cus_orphan1"]})
    findings = pd.DataFrame(
        {
            "code": ["duplicate_invoice", "unmatched_invoice", "missing_invoice"],
            "account_id": ["001000000000001AAA", None, "001000000000002AAA"],
            "contract_id": ["800000000000001AAA", None, "<b>800</b>"],
            "invoice_id": ["in_a;in_b", "in_orphan1", None],
        }
    )
    linked = link_columns(findings, accounts, RecordLinks(False, ORG), invoices)
    assert list(linked.columns[-4:]) == LINK_COLUMNS
    dup, orphan, missing = linked.to_dict("records")
    test = "https://dashboard.stripe.com/test"
    assert dup["stripe_invoice_url"] == f"{test}/invoices/in_a {test}/invoices/in_b"
    assert dup["stripe_customer_url"] == f"{test}/customers/cus_A1"
    assert dup["salesforce_contract_url"] == f"{ORG}/lightning/r/Contract/800000000000001AAA/view"
    # an unmatched invoice has no account: its customer comes from the invoice
    assert orphan["stripe_customer_url"] == f"{test}/customers/cus_orphan1"
    assert orphan["salesforce_account_url"] == ""
    assert missing["stripe_invoice_url"] == "" and missing["salesforce_contract_url"] == ""


def test_the_run_links_by_source(
    demo_source: DemoSource, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = demo_source
    monkeypatch.delenv("REVOPS_SALESFORCE_LINK_BASE", raising=False)
    assert record_links(demo, demo) == RecordLinks(False, DEMO_SALESFORCE_BASE)
    # An exported Stripe object carries `livemode` (Stripe API reference, Invoice object).
    (tmp_path / "invoices.jsonl").write_text(
        json.dumps({"id": "in_1", "object": "invoice", "livemode": True}) + "\n"
    )
    files = FilesSource(tmp_path)
    assert record_links(files, files) == RecordLinks(True, None)
    monkeypatch.setenv("REVOPS_SALESFORCE_LINK_BASE", ORG)
    assert record_links(files, files).salesforce_base == ORG
    (tmp_path / "invoices.jsonl").write_text(json.dumps({"id": "in_1", "livemode": False}) + "\n")
    assert record_links(files, demo) == RecordLinks(False, ORG)


@pytest.fixture(scope="module")
def linked(demo_source):
    result = reconcile_demo(demo_source)
    invoices, _ = demo_source.invoices()
    findings = link_columns(
        result.findings, demo_source.accounts(), RecordLinks(False, ORG), invoices
    )
    # a hostile invoice id stays text and gets no link
    findings.loc[findings.index[0], "invoice_id"] = HOSTILE[3]
    findings.loc[findings.index[0], "stripe_invoice_url"] = ""
    return result, findings


def test_csv_and_workbook_carry_the_links(linked, tmp_path: Path) -> None:
    result, findings = linked
    write_reconciliation_files(result, "rec-x", "# s\n", tmp_path, findings)
    csv = pd.read_csv(tmp_path / "reconciliation.csv", dtype=str, keep_default_na=False)
    assert list(csv.columns[-4:]) == LINK_COLUMNS
    assert csv["stripe_invoice_url"].str.startswith("https://dashboard.stripe.com/test/").sum() > 5
    sheet = load_workbook(tmp_path / "reconciliation.xlsx")["Exceptions"]
    header = [c.value for c in sheet[1]]
    invoice_col = header.index("invoice_id") + 1
    url_col = header.index("salesforce_account_url") + 1
    first = sheet.cell(row=2, column=invoice_col)
    assert first.value == HOSTILE[3] and first.data_type == "s" and first.hyperlink is None
    linked_cells = [sheet.cell(row=r, column=invoice_col) for r in range(3, sheet.max_row + 1)]
    with_links = [c for c in linked_cells if c.hyperlink is not None]
    assert with_links, "invoice ids open their Stripe invoice"
    for cell in with_links:
        assert cell.data_type == "s"
        assert cell.hyperlink.target == (
            f"https://dashboard.stripe.com/test/invoices/{cell.value.split(';')[0]}"
        )
    account = sheet.cell(row=2, column=url_col)
    assert account.value.startswith(ORG) and account.hyperlink.target == account.value
    formulas = [c for row in sheet.iter_rows() for c in row if c.data_type == "f"]
    assert formulas == []


def test_the_reports_evidence_links_escaped() -> None:
    row = pd.Series(
        {
            "stripe_invoice_url": 'https://dashboard.stripe.com/test/invoices/in_1"><b>x',
            "stripe_customer_url": "",
            "salesforce_account_url": f"{ORG}/lightning/r/Account/001000000000001AAA/view",
            "salesforce_contract_url": None,
        }
    )
    html = evidence_html(None, row)
    assert '"><b>' not in html and "&quot;&gt;&lt;b&gt;x" in html
    assert f'href="{ORG}/lightning/r/Account/001000000000001AAA/view"' in html
    assert "Salesforce account 001000000000001AAA" in html
    assert 'rel="noopener noreferrer"' in html
    assert evidence_html(None, pd.Series({"stripe_invoice_url": ""})) == ""
