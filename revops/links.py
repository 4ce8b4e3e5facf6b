"""Links from a finding to the records it is about: the Stripe dashboard and Salesforce.

Only ids shaped like the system's own become links (a Stripe `in_…` / `cus_…` id, a 15- or
18-character Salesforce id), each percent-encoded into a fixed URL: text from the data can
never choose the host, the scheme or the path of a link. Callers escape the URL for their
format (HTML attribute, markdown) as they escape any other text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pandas as pd

STRIPE_DASHBOARD = "https://dashboard.stripe.com"
_STRIPE_KINDS = {
    "invoices": re.compile(r"in_[A-Za-z0-9_]+"),
    "customers": re.compile(r"cus_[A-Za-z0-9_]+"),
}
_SALESFORCE_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
# The columns link_columns adds (reconciliation.csv carries them after the review columns).
LINK_COLUMNS = [
    "stripe_invoice_url",
    "stripe_customer_url",
    "salesforce_account_url",
    "salesforce_contract_url",
]


@dataclass(frozen=True)
class RecordLinks:
    """Where records open: Stripe's dashboard in test or live mode, a Salesforce org's URL.

    `stripe_live` None means no Stripe links; `salesforce_base` None means no Salesforce links.
    """

    stripe_live: bool | None = False
    salesforce_base: str | None = None

    def __post_init__(self) -> None:
        if self.salesforce_base is not None:
            parts = urlsplit(self.salesforce_base)
            if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
                raise ValueError(
                    "the Salesforce link base must be an https:// URL, "
                    f"got {self.salesforce_base!r}"
                )

    def stripe(self, kind: str, object_id: object) -> str | None:
        """The dashboard URL of a Stripe invoice (`invoices`) or customer (`customers`)."""
        if self.stripe_live is None or not isinstance(object_id, str):
            return None
        if not _STRIPE_KINDS[kind].fullmatch(object_id):
            return None
        mode = "" if self.stripe_live else "test/"
        return f"{STRIPE_DASHBOARD}/{mode}{kind}/{quote(object_id, safe='')}"

    def salesforce(self, sobject: str, record_id: object) -> str | None:
        """The Lightning URL of a Salesforce record (`Account`, `Contract`, ...)."""
        if self.salesforce_base is None or not isinstance(record_id, str):
            return None
        if not _SALESFORCE_ID.fullmatch(record_id):
            return None
        base = self.salesforce_base.rstrip("/")
        return f"{base}/lightning/r/{quote(sobject, safe='')}/{quote(record_id, safe='')}/view"


def stripe_live_from_key(key: str) -> bool:
    """Live mode for `sk_live_…` / `rk_live_…` keys; test mode otherwise (as Stripe names them)."""
    return key.startswith(("sk_live_", "rk_live_"))


def link_columns(
    findings: pd.DataFrame,
    accounts: pd.DataFrame,
    links: RecordLinks,
    invoices: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """`findings` with LINK_COLUMNS: the records each finding names, as URLs (empty when none).

    A finding naming several invoices (`in_a;in_b`) gets their URLs joined by spaces. The
    customer is the account's Stripe customer, else (an unmatched invoice) the invoice's.
    """
    by_account = accounts.drop_duplicates("account_id").set_index("account_id")
    customer = findings["account_id"].map(by_account["stripe_customer_id"])
    if invoices is not None and len(invoices):
        by_invoice = invoices.drop_duplicates("invoice_id").set_index("invoice_id")["customer_id"]
        first = findings["invoice_id"].astype("str").str.split(";").str[0]
        customer = customer.where(customer.notna(), first.map(by_invoice))

    def invoices(value: object) -> str:
        if not isinstance(value, str):
            return ""
        urls = (links.stripe("invoices", part) for part in value.split(";"))
        return " ".join(u for u in urls if u)

    def one(url: str | None) -> str:
        return url or ""

    return findings.assign(
        stripe_invoice_url=pd.array(findings["invoice_id"].map(invoices), dtype="str"),
        stripe_customer_url=pd.array(
            [one(links.stripe("customers", c)) for c in customer],
            dtype="str",
        ),
        salesforce_account_url=pd.array(
            [one(links.salesforce("Account", a)) for a in findings["account_id"]], dtype="str"
        ),
        salesforce_contract_url=pd.array(
            [one(links.salesforce("Contract", c)) for c in findings["contract_id"]], dtype="str"
        ),
    )
