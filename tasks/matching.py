"""Link Stripe customers to CRM accounts and invoice lines to CRM contracts.

Two ways link a customer to an account: the customer's `metadata.salesforce_account_id`
(Stripe side) or the account's `Stripe_Customer_Id__c` (CRM side). Lines map to a contract by
Stripe subscription id when a contract carries one, else by account and period overlap with
contracts that carry none. When several contracts qualify, the best is the one whose dates
contain the line, then one whose status bills, then one in the line's currency, then the
nearest in time.

Everything per line works on integer positions (rows of the invoices, accounts and contracts
frames) and datetime64[D] day numbers: ids are resolved once by hash lookup, so a million
lines cost a few vectorised passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from revops.frames import FREQUENCY_MONTHS, isin
from revops.periods import OPEN_END, Window, local_days, month_parts
from revops.tasks.contract_lines import LineTable
from revops.tasks.expected_billing import expected_unit_minor
from revops.tasks.reconciliation_config import ReconciliationConfig


def link_customers(
    customers: pd.DataFrame, accounts: pd.DataFrame, invoice_customers: pd.Index
) -> pd.DataFrame:
    """customer_id -> account_id, and which side of the link was used.

    The Stripe-side metadata link wins when it names an account that exists; otherwise the
    CRM's Stripe customer id field. Customers seen only on invoices (`invoice_customers`,
    the distinct ids) are linked too.
    Columns: customer_id, account_id (NA when unlinked), link (metadata | crm | NA).
    """
    known_accounts = pd.Index(accounts["account_id"])
    ids = pd.Index(customers["customer_id"]).union(invoice_customers)
    links = pd.DataFrame({"customer_id": ids.astype("str")})
    meta = customers.loc[
        isin(customers["salesforce_account_id"], known_accounts),
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
    side = np.where(
        links["meta_account"].notna(),
        "metadata",
        np.where(links["crm_account"].notna(), "crm", None),
    )
    links["link"] = pd.Series(side, index=links.index, dtype="str").where(
        links["account_id"].notna()
    )
    return links[["customer_id", "account_id", "link"]]


@dataclass(frozen=True)
class ContractTerms:
    """Per-contract arrays, indexed by the contract's row position."""

    start: np.ndarray  # datetime64[D]
    start_month: np.ndarray  # start as months since 1970-01 ...
    start_day0: np.ndarray  # ... and 0-based day of month
    end: np.ndarray  # datetime64[D]; OPEN_END when the contract has no end date
    months: np.ndarray  # months per billing period
    bills: np.ndarray  # status bills within the contract's dates
    currency: np.ndarray  # currency code (index into the shared currency list)
    account: np.ndarray  # account row position, -1 when the account is unknown
    expected_unit: np.ndarray  # discounted unit amount of a full period, minor units
    quantity: np.ndarray

    @classmethod
    def of(
        cls,
        contracts: pd.DataFrame,
        accounts: pd.DataFrame,
        currencies: pd.Index,
        config: ReconciliationConfig,
    ) -> ContractTerms:
        end = contracts["end_date"].to_numpy(dtype="datetime64[D]")
        start = contracts["start_date"].to_numpy(dtype="datetime64[D]")
        start_month, start_day0 = month_parts(start)
        return cls(
            start=start,
            start_month=start_month,
            start_day0=start_day0,
            end=np.where(np.isnat(end), OPEN_END, end),
            months=contracts["billing_frequency"].map(FREQUENCY_MONTHS).to_numpy(dtype=np.int64),
            bills=contracts["status"].isin(config.billing_contract_statuses).to_numpy(),
            currency=currencies.get_indexer(contracts["currency"]),
            account=pd.Index(accounts["account_id"]).get_indexer(contracts["account_id"]),
            expected_unit=expected_unit_minor(contracts),
            quantity=contracts["quantity"].to_numpy(dtype=np.int64),
        )


def billable_lines(
    invoices: pd.DataFrame,
    lines: pd.DataFrame,
    invoice_account: np.ndarray,
    currencies: pd.Index,
    window: Window,
    config: ReconciliationConfig,
) -> tuple[pd.DataFrame, pd.Series]:
    """Numeric facts of the lines of billable invoices that can bear on `window`.

    Returns a frame of positions, flags, amounts and day numbers, and the lines' Stripe
    subscription ids (the line's own, else its invoice's) aligned to it. `net` is the line
    amount after discounts and before tax; `start`/`end` (exclusive) are the service period
    as calendar dates in the billing timezone. Invoices whose service ended before the
    window (less the grace days) cannot bill it and are dropped first.
    """
    inv_pos = pd.Index(invoices["invoice_id"]).get_indexer(lines["invoice_id"])
    billable = invoices["status"].isin(config.billable_invoice_statuses).to_numpy()
    end = local_days(lines["period_end"], config.billing_timezone)
    # An invoice whose every line ended before the window (less the grace days) cannot bill
    # it; a line of an invoice that reaches the window can (one-off items ride with it).
    earliest = window.start64 - np.timedelta64(config.period_grace_days + 1, "D")
    known = inv_pos >= 0
    latest = np.full(len(invoices), np.datetime64("1970-01-01"), dtype="datetime64[D]")
    np.maximum.at(latest, inv_pos[known], end[known])
    keep = known & billable[np.maximum(inv_pos, 0)] & (latest[np.maximum(inv_pos, 0)] >= earliest)
    kept = lines[keep]
    inv_pos = inv_pos[keep]
    line_type_regular = (kept["line_type"] == "subscription").to_numpy()
    proration = kept["proration"].to_numpy(dtype=bool)
    quantity = kept["quantity_decimal"].astype("float64").fillna(kept["quantity"].astype("float64"))
    unit = kept["unit_amount_minor"]
    amount = kept["amount_minor"].to_numpy(dtype=np.int64)
    discount = kept["discount_minor"].to_numpy(dtype=np.int64)
    facts = pd.DataFrame(
        {
            "line_pos": np.flatnonzero(keep),
            "inv_pos": inv_pos,
            "account": invoice_account[inv_pos],
            "currency": currencies.get_indexer(kept["currency"]),
            "regular": line_type_regular & ~proration,
            "proration": proration,
            "quantity": quantity.fillna(0).to_numpy(dtype="float64"),
            "has_quantity": quantity.notna().to_numpy(),
            "unit": unit.fillna(0).to_numpy(dtype=np.int64),
            "has_unit": unit.notna().to_numpy(),
            "discount": discount,
            "gross": amount,
            "net": amount - discount,
            "metered": (kept["usage_type"] == "metered").fillna(False).to_numpy(dtype=bool),
            "start": local_days(kept["period_start"], config.billing_timezone),
            "end": end[keep],
        }
    )
    invoice_subs = invoices["subscription_id"].to_numpy(dtype=object)[inv_pos]
    subs = kept["subscription_id"].to_numpy(dtype=object)
    subs = np.where(pd.isna(subs), invoice_subs, subs)
    facts["price_id"] = kept["price_id"].to_numpy(dtype=object)
    facts["sf_contract"] = kept["salesforce_contract_id"].to_numpy(dtype=object)
    facts["sf_line"] = kept["salesforce_line_id"].to_numpy(dtype=object)
    facts["item_id"] = kept["subscription_item_id"].to_numpy(dtype=object)
    return facts, pd.Series(subs, dtype="str")


def with_subscription_links(
    facts: pd.DataFrame, subs: pd.Series, subscriptions: pd.DataFrame | None
) -> pd.DataFrame:
    """Fill each line's Salesforce links from its Stripe subscription where the line has none.

    A subscription's `metadata.salesforce_contract_id` links all its lines to a contract; a
    subscription item's `metadata.salesforce_line_id` links that item's lines to a line.
    """
    if subscriptions is None or subscriptions.empty:
        return facts
    by_sub = (
        subscriptions.dropna(subset=["salesforce_contract_id"])
        .drop_duplicates("subscription_id")
        .set_index("subscription_id")["salesforce_contract_id"]
    )
    by_item = (
        subscriptions.dropna(subset=["item_id", "salesforce_line_id"])
        .drop_duplicates("item_id")
        .set_index("item_id")["salesforce_line_id"]
    )
    contract = pd.Series(facts["sf_contract"].to_numpy(dtype=object))
    contract = contract.where(contract.notna(), subs.map(by_sub).to_numpy(dtype=object))
    line = pd.Series(facts["sf_line"].to_numpy(dtype=object))
    items = pd.Series(facts["item_id"].to_numpy(dtype=object))
    line = line.where(line.notna(), items.map(by_item).to_numpy(dtype=object))
    return facts.assign(sf_contract=contract.to_numpy(), sf_line=line.to_numpy())


def match_contracts(
    facts: pd.DataFrame,
    subs: pd.Series,
    contracts: pd.DataFrame,
    terms: ContractTerms,
    grace: int,
    table: LineTable,
) -> pd.DataFrame:
    """The best contract for each line, or none: contract (row position, -1), inside, bills.

    Links in order of strength: the line's Salesforce contract or line id (subscription or
    item metadata) names its contract outright; else the candidates are the contracts
    carrying its subscription id, those of its account carrying none, and those of its
    account with a line on its price. Among candidates: one with a line on the line's price,
    then one carrying its subscription, then one whose dates contain it, whose status bills,
    in its currency, the nearest in time.
    `inside`: the line starts within the contract's dates (less the grace days); `bills`:
    the contract's status bills within its dates.
    """
    n = len(facts)
    line = np.arange(n)
    lines = table.lines
    forced = pd.Index(contracts["contract_id"]).get_indexer(
        pd.Series(facts["sf_contract"].to_numpy(dtype=object), dtype="str")
    )
    by_line = pd.Index(lines["line_id"].astype("str")).get_indexer(
        pd.Series(facts["sf_line"].to_numpy(dtype=object), dtype="str")
    )
    forced = np.where(by_line >= 0, lines["contract"].to_numpy()[np.maximum(by_line, 0)], forced)
    free = forced < 0
    with_sub = contracts["stripe_subscription_id"].notna().to_numpy()
    by_sub = pd.DataFrame({"sub": subs, "line": line})[subs.notna().to_numpy() & free].merge(
        pd.DataFrame(
            {
                "sub": contracts["stripe_subscription_id"][with_sub],
                "contract": np.flatnonzero(with_sub),
            }
        ),
        on="sub",
    )
    account = facts["account"].to_numpy()
    open_lines = free.copy()
    open_lines[by_sub["line"].to_numpy()] = False
    open_lines &= account >= 0
    by_account = pd.DataFrame({"account": account[open_lines], "line": line[open_lines]}).merge(
        pd.DataFrame({"account": terms.account[~with_sub], "contract": np.flatnonzero(~with_sub)}),
        on="account",
    )
    prices = price_pairs(table)
    price_codes = prices.codes_of(facts["price_id"])
    priced = free & (price_codes >= 0) & (account >= 0)
    by_price = pd.DataFrame(
        {"account": account[priced], "code": price_codes[priced], "line": line[priced]}
    ).merge(
        pd.DataFrame(
            {
                "account": terms.account[prices.contract],
                "code": prices.code,
                "contract": prices.contract,
            }
        ),
        on=["account", "code"],
    )
    fixed = np.flatnonzero(~free)
    cand_line = np.concatenate(
        [fixed, by_sub["line"].to_numpy(), by_account["line"].to_numpy(), by_price["line"]]
    )
    cand_contract = np.concatenate(
        [
            forced[fixed],
            by_sub["contract"].to_numpy(),
            by_account["contract"].to_numpy(),
            by_price["contract"].to_numpy(),
        ]
    )
    via_sub = np.concatenate(
        [
            np.ones(len(fixed) + len(by_sub), dtype=bool),
            np.zeros(len(by_account) + len(by_price), dtype=bool),
        ]
    )
    price_match = prices.has(cand_contract, price_codes[cand_line])

    starts = facts["start"].to_numpy()[cand_line]
    begins = terms.start[cand_contract] - np.timedelta64(grace, "D")
    ends = terms.end[cand_contract]
    inside = (starts >= begins) & (starts <= ends)
    bills = terms.bills[cand_contract]
    rank = (
        price_match.astype(np.int64) * 16
        + via_sub.astype(np.int64) * 8
        + inside.astype(np.int64) * 4
        + bills.astype(np.int64) * 2
        + (terms.currency[cand_contract] == facts["currency"].to_numpy()[cand_line])
    )
    distance = np.maximum((begins - starts).astype(np.int64), 0) + np.maximum(
        (starts - ends).astype(np.int64), 0
    )
    counts = np.bincount(cand_line, minlength=n)
    ambiguous = counts[cand_line] > 1
    chosen = np.flatnonzero(~ambiguous)
    if ambiguous.any():
        idx = np.flatnonzero(ambiguous)
        order = idx[np.lexsort((cand_contract[idx], distance[idx], -rank[idx], cand_line[idx]))]
        first = np.ones(len(order), dtype=bool)
        first[1:] = cand_line[order][1:] != cand_line[order][:-1]
        chosen = np.concatenate([chosen, order[first]])
    contract = np.full(n, -1, dtype=np.int64)
    contract[cand_line[chosen]] = cand_contract[chosen]
    out_inside = np.zeros(n, dtype=bool)
    out_inside[cand_line[chosen]] = inside[chosen]
    out_bills = np.zeros(n, dtype=bool)
    out_bills[cand_line[chosen]] = bills[chosen]
    return pd.DataFrame({"contract": contract, "inside": out_inside, "bills": out_bills})


@dataclass(frozen=True)
class PricePairs:
    """The (contract, Stripe price) pairs of the contracts' lines, as integer codes."""

    index: pd.Index  # price id -> code
    contract: np.ndarray
    code: np.ndarray
    keys: pd.Index  # contract * len(index) + code, for membership tests

    def codes_of(self, price_ids: pd.Series) -> np.ndarray:
        """Each price id's code, -1 when no contract line has it (or none is given)."""
        return self.index.get_indexer(pd.Series(price_ids.to_numpy(dtype=object), dtype="str"))

    def has(self, contract: np.ndarray, code: np.ndarray) -> np.ndarray:
        """Whether `contract` has a line on the price `code` (vectorised)."""
        if not len(self.keys):
            return np.zeros(len(contract), dtype=bool)
        return (code >= 0) & pd.Index(contract * len(self.index) + code).isin(self.keys)

    def priced_contracts(self, n_contracts: int) -> np.ndarray:
        """Whether each contract has any line with a Stripe price id."""
        out = np.zeros(n_contracts, dtype=bool)
        out[self.contract] = True
        return out


def price_pairs(table: LineTable) -> PricePairs:
    """The price pairs of a line table."""
    lines = table.lines
    with_price = lines["price_id"].notna().to_numpy()
    index = pd.Index(pd.unique(lines["price_id"][with_price].astype("str")), dtype="str")
    contract = lines["contract"].to_numpy(dtype=np.int64)[with_price]
    code = index.get_indexer(lines["price_id"][with_price].astype("str"))
    keys = pd.Index(np.unique(contract * len(index) + code))
    return PricePairs(index=index, contract=contract, code=code, keys=keys)
