"""Where a run's records open for people: Stripe's dashboard mode and the Salesforce org URL.

Live Stripe: the mode of the API key (`sk_live_…` is live). Files: the `livemode` field of the
exported Stripe objects. Demo: test mode. Live Salesforce: the org the connector logged in to;
files and demo: REVOPS_SALESFORCE_LINK_BASE (the demo defaults to a placeholder org).
"""

from __future__ import annotations

import json
from pathlib import Path

from revops.connectors.base import BillingSource, CrmSource
from revops.links import RecordLinks, stripe_live_from_key
from revops.settings import get_settings

DEMO_SALESFORCE_BASE = "https://demo-org.my.salesforce.com"


def record_links(billing: BillingSource, crm: CrmSource) -> RecordLinks:
    """The links of one run's billing and CRM sources."""
    return RecordLinks(stripe_live=_stripe_live(billing), salesforce_base=_salesforce_base(crm))


def _stripe_live(billing: BillingSource) -> bool | None:
    from revops.connectors.files import FilesSource

    if billing.name == "stripe":
        from revops.connectors.stripe_billing import StripeSettings

        return stripe_live_from_key(StripeSettings().key())
    if isinstance(billing, FilesSource):
        return _exported_livemode(billing.folder)
    return False if billing.name == "demo" else None


def _exported_livemode(folder: Path) -> bool:
    for name in ("invoices.jsonl", "customers.jsonl"):
        path = folder / name
        if not path.exists():
            continue
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    try:
                        return json.loads(line).get("livemode") is True
                    except (ValueError, AttributeError):
                        return False
    return False


def _salesforce_base(crm: CrmSource) -> str | None:
    if crm.name == "salesforce":
        from revops.connectors.salesforce_crm import SalesforceCrm

        if isinstance(crm, SalesforceCrm):
            return f"https://{crm.sf.sf_instance}"
    configured = get_settings().salesforce_link_base
    if configured:
        return configured
    return DEMO_SALESFORCE_BASE if crm.name == "demo" else None
