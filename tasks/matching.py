"""Link Stripe customers to CRM accounts and invoice lines to CRM contracts.

Two ways link a customer to an account: the customer's `metadata.salesforce_account_id`
(Stripe side) or the account's `Stripe_Customer_Id__c` (CRM side). Lines map to a contract by
Stripe subscription id when a contract carries one, else by account and period overlap with
contracts that carry none. When several contracts qualify, the best is the one whose dates
contain the line, then an active one, then one in the line's currency, then the nearest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from revops.config import ReconciliationConfig
from tasks.periods import local_dates


def link_customers(
    customers: pd.DataFrame, accounts: pd.DataFrame, invoices: pd.DataFrame
) -> pd.DataFrame:
    """customer_id -> account_id, and which side of the link was used.

    The Stripe-side metadata link wins when it names an account that exists; otherwise the
    CRM's Stripe customer id field. Customers seen only on invoices are linked too.
    Columns: customer_id, account_id (NA when unlinked), link (metadata | crm | NA).
    """
    known_accounts = pd.Index(accounts["account_id"])
    ids = pd.Index(customers["customer_id"]).union(pd.Index(invoices["customer_id"].unique()))
    links = pd.DataFrame({"customer_id": ids.astype("str")})
    meta = customers.loc[
        customers["salesforce_account_id"].isin(known_accounts),
        ["customer_id", "salesforce_account_id"],
    ].rename(columns={"salesforce_account_id": "meta_account"})
    crm = (
        accounts.dropna(subset=["stripe_customer_id"])
        .sort_values("account_id")
        .drop_duplicates("stripe_customer_id")
        .loc[:, ["stripe_customer_id", "account_id"]]
        .rename(columns={"stripe_customer_id": "customer_id", "account_id": "crm_account"})
    )
    links = links.merge(meta, on="customer_id", how="left").merge(crm, on="customer_id", how="left")
    links["account_id"] = links["meta_account"].fillna(links["crm_account"])
    links["link"] = np.where(
        links["meta_account"].notna(),
        "metadata",
        np.where(links["crm_account"].notna(), "crm", None),
    )
    links["link"] = links["link"].astype("str").where(links["account_id"].notna())
    return links[["customer_id", "account_id", "link"]]


def billable_lines(
    invoices: pd.DataFrame,
    lines: pd.DataFrame,
    customer_links: pd.DataFrame,
    config: ReconciliationConfig,
) -> pd.DataFrame:
    """Invoice lines of billable invoices, with account, local dates and net amount.

    `net_minor` is the line amount after discounts and before tax; `start_date` and
    `end_date` (exclusive) are the line's service period as calendar dates in the billing
    timezone, replacing Stripe's instants.
    """
    billable = invoices.loc[
        invoices["status"].isin(config.billable_invoice_statuses),
        ["invoice_id", "customer_id", "subscription_id", "status"],
    ].rename(columns={"subscription_id": "invoice_subscription_id"})
    out = lines.merge(billable, on="invoice_id", how="inner", validate="many_to_one")
    out = out.merge(customer_links[["customer_id", "account_id"]], on="customer_id", how="left")
    out["subscription_id"] = out["subscription_id"].fillna(out["invoice_subscription_id"])
    out["net_minor"] = out["amount_minor"] - out["discount_minor"]
    out["start_date"] = local_dates(out["period_start"], config.billing_timezone)
    out["end_date"] = local_dates(out["period_end"], config.billing_timezone)
    out["line_key"] = np.arange(len(out), dtype=np.int64)
    return out.drop(columns=["invoice_subscription_id", "period_start", "period_end"])


def match_lines_to_contracts(
    lines: pd.DataFrame, contracts: pd.DataFrame, config: ReconciliationConfig
) -> pd.DataFrame:
    """The best contract for each line (from `billable_lines`), or none.

    Returns `lines` with contract_id (NA when none qualifies), matched_by
    (subscription | account | NA), inside (line starts within the contract's dates, less the
    grace days) and active (the contract's status bills within its dates).
    """
    grace = pd.Timedelta(days=config.period_grace_days)
    keys = ["line_key", "subscription_id", "account_id", "start_date", "currency"]
    with_sub = contracts[contracts["stripe_subscription_id"].notna()]
    by_sub = lines.loc[lines["subscription_id"].notna(), keys].merge(
        with_sub[
            [
                "contract_id",
                "stripe_subscription_id",
                "start_date",
                "end_date",
                "status",
                "currency",
            ]
        ],
        left_on="subscription_id",
        right_on="stripe_subscription_id",
        suffixes=("", "_contract"),
    )
    by_sub["matched_by"] = "subscription"
    rest = lines.loc[
        ~lines["line_key"].isin(by_sub["line_key"]) & lines["account_id"].notna(), keys
    ]
    without_sub = contracts[contracts["stripe_subscription_id"].isna()]
    by_account = rest.merge(
        without_sub[["contract_id", "account_id", "start_date", "end_date", "status", "currency"]],
        on="account_id",
        suffixes=("", "_contract"),
    )
    by_account["matched_by"] = "account"
    candidates = pd.concat([by_sub, by_account], ignore_index=True)

    line_start = candidates["start_date"]
    begins = candidates["start_date_contract"] - grace
    ends = candidates["end_date"]
    inside = (line_start >= begins) & (ends.isna() | (line_start <= ends))
    days_before = (begins - line_start).dt.days.clip(lower=0)
    days_after = (line_start - ends).dt.days.clip(lower=0).fillna(0)
    candidates["inside"] = inside.to_numpy()
    candidates["active"] = candidates["status"].isin(config.billing_contract_statuses).to_numpy()
    rank = (
        candidates["inside"].astype(np.int64) * 4
        + candidates["active"].astype(np.int64) * 2
        + (candidates["currency"] == candidates["currency_contract"]).astype(np.int64)
    )
    candidates["rank"] = -rank
    candidates["distance"] = (days_before + days_after).astype(np.int64)
    ambiguous = candidates["line_key"].duplicated(keep=False)
    best = pd.concat(
        [
            candidates[~ambiguous],
            candidates[ambiguous]
            .sort_values(["line_key", "rank", "distance", "contract_id"])
            .drop_duplicates("line_key"),
        ]
    )[["line_key", "contract_id", "matched_by", "inside", "active"]]
    out = lines.merge(best, on="line_key", how="left", validate="one_to_one")
    out["inside"] = out["inside"].fillna(False).astype(bool)
    out["active"] = out["active"].fillna(False).astype(bool)
    return out
