"""Split a book into disjoint partitions by account, for reconciliation on a task cluster.

Contracts go with their account. An invoice goes with the contract carrying its subscription
when there is one, else with the account its customer links to, else by its customer id; its
lines follow it; contract lines follow their contract and usage its account. Accounts,
customers and subscriptions (small, and needed to link) go to every partition. So each
contract period and each invoice is reconciled in exactly one partition.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from revops.tasks.matching import link_customers
from revops.tasks.reconciliation import ReconciliationInput


def _bucket(keys: pd.Series, partitions: int) -> np.ndarray:
    """A stable partition number per key (pandas' hash: the same on every run)."""
    hashed = pd.util.hash_pandas_object(keys.astype("str"), index=False).to_numpy()
    return (hashed % np.uint64(partitions)).astype(np.int64)


def split_by_account(data: ReconciliationInput, partitions: int) -> list[ReconciliationInput]:
    """`partitions` disjoint inputs whose reconciliations add up to the whole book's."""
    if partitions <= 1:
        return [data]
    contract_part = _bucket(data.contracts["account_id"], partitions)
    invoices = data.invoices
    links = link_customers(
        data.customers, data.accounts, pd.Index(invoices["customer_id"].unique())
    )
    account = invoices["customer_id"].map(links.set_index("customer_id")["account_id"])
    by_account = _bucket(account.fillna(invoices["customer_id"]), partitions)
    with_sub = data.contracts.dropna(subset=["stripe_subscription_id"]).drop_duplicates(
        "stripe_subscription_id"
    )
    sub_part = pd.Series(
        _bucket(with_sub["account_id"], partitions), index=with_sub["stripe_subscription_id"]
    )
    by_subscription = invoices["subscription_id"].map(sub_part)
    invoice_part = by_subscription.fillna(pd.Series(by_account, index=invoices.index)).to_numpy(
        dtype=np.int64
    )
    line_part = (
        pd.Series(invoice_part, index=invoices["invoice_id"])
        .reindex(data.invoice_lines["invoice_id"])
        .to_numpy()
    )
    lines = data.contract_lines
    lines_part = (
        pd.Series(contract_part, index=data.contracts["contract_id"])
        .reindex(lines["contract_id"])
        .fillna(-1)
        .to_numpy(dtype=np.int64)
        if lines is not None
        else None
    )
    usage = data.usage
    usage_part = _bucket(usage["account_id"], partitions) if usage is not None else None
    return [
        ReconciliationInput(
            accounts=data.accounts,
            contracts=data.contracts[contract_part == p],
            customers=data.customers,
            invoices=invoices[invoice_part == p],
            invoice_lines=data.invoice_lines[line_part == p],
            contract_lines=lines[lines_part == p] if lines is not None else None,
            usage=usage[usage_part == p] if usage is not None else None,
            subscriptions=data.subscriptions,
            credits=data.credits,  # keyed by invoice: each applies in its invoice's part
        )
        for p in range(partitions)
    ]
