"""Which line of its contract each invoice line bills, once it has a contract and a period.

In order of strength: the line's Salesforce line id (item metadata); its Stripe price on a
line of the contract; else the best fit among the lines the contract has in that period (a
matching charge type, then unit amount, then quantity). An invoice line on a Stripe price
that no line of a priced contract has is an unexpected item: billed, but agreed nowhere.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from revops.tasks.contract_lines import ONE_TIME, RECURRING, USAGE, LineTable
from revops.tasks.matching import PricePairs


def resolve_groups(
    lines: pd.DataFrame,
    table: LineTable,
    prices: PricePairs,
    terms: pd.DataFrame,
    n_contracts: int,
) -> pd.DataFrame:
    """`lines` (placed, in a contract) with `group` (-1: none), `unexpected`, `usage`, `counted`.

    `counted`: a regular subscription line that bills a period in advance (not usage, not a
    $0 trial line): what duplicate, price and quantity checks look at.
    """
    n = len(lines)
    contract = lines["contract"].to_numpy()
    group = np.full(n, -1, dtype=np.int64)
    book = table.lines
    by_line = pd.Index(book["line_id"].astype("str")).get_indexer(
        pd.Series(lines["sf_line"].to_numpy(dtype=object), dtype="str")
    )
    own = by_line >= 0
    own[own] = book["contract"].to_numpy()[by_line[own]] == contract[own]
    group[own] = book["group"].to_numpy()[by_line[own]]

    groups = table.groups
    key_of_group, group_of_key = _price_keys(table, prices)
    width = max(len(prices.index), 1)
    code = prices.codes_of(lines["price_id"])
    open_ = (group < 0) & (code >= 0)
    at = key_of_group.get_indexer(contract[open_] * width + code[open_])
    found = np.flatnonzero(open_)[at >= 0]
    group[found] = group_of_key[at[at >= 0]]

    has_price = lines["price_id"].notna().to_numpy()
    priced_contract = prices.priced_contracts(n_contracts)[contract]
    unexpected = (group < 0) & has_price & priced_contract
    fit = (group < 0) & ~unexpected
    if fit.any() and not terms.empty:
        group[fit] = _best_fit(lines[fit], terms)
    charge = np.where(group >= 0, groups["charge"].to_numpy()[np.maximum(group, 0)], RECURRING)
    usage = lines["metered"].to_numpy() | (charge == USAGE)
    counted = lines["regular"].to_numpy() & ~usage & ~unexpected & (lines["gross"].to_numpy() != 0)
    return lines.assign(group=group, unexpected=unexpected, usage=usage, counted=counted)


def _price_keys(table: LineTable, prices: PricePairs) -> tuple[pd.Index, np.ndarray]:
    """(contract, price) keys of every priced line and the group each leads to.

    Every line's own price counts, not only the price its group is keyed on: an amendment
    on a new price (a 20-seat line at a lower unit, revising the old line) is in its root's
    group, and Stripe bills it on its own price, often with no item metadata naming the line.
    A price on lines of two groups of one contract leads to the group keyed on it.
    """
    book = table.lines
    priced = book["price_id"].notna().to_numpy()
    width = max(len(prices.index), 1)
    group = book["group"].to_numpy(dtype=np.int64)[priced]
    price = book["price_id"].to_numpy(dtype=object)[priced]
    keys = book["contract"].to_numpy(dtype=np.int64)[priced] * width + prices.codes_of(
        pd.Series(price, dtype=object)
    )
    keyed_on = table.groups["price_id"].to_numpy(dtype=object)[group] == price
    order = np.lexsort((~keyed_on, keys))
    keys, group = keys[order], group[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    return pd.Index(keys[first]), group[first]


def _best_fit(lines: pd.DataFrame, terms: pd.DataFrame) -> np.ndarray:
    """The group of the period each line fits best: charge type, then unit, then quantity."""
    asks = pd.DataFrame(
        {
            "ask": np.arange(len(lines)),
            "pkey": lines["pkey"].to_numpy(),
            "regular": lines["regular"].to_numpy(),
            "metered": lines["metered"].to_numpy(),
            "unit": lines["unit"].to_numpy(),
            "quantity": lines["quantity"].to_numpy(),
        }
    )
    pairs = asks.merge(terms[["pkey", "group", "charge", "exp_unit", "exp_quantity"]], on="pkey")
    out = np.full(len(lines), -1, dtype=np.int64)
    if pairs.empty:
        return out
    charge = pairs["charge"].to_numpy()
    kind = np.where(
        pairs["metered"].to_numpy(),
        USAGE,
        np.where(pairs["regular"].to_numpy(), RECURRING, ONE_TIME),
    )
    rank = (
        (charge == kind).astype(np.int64) * 4
        + (pairs["unit"].to_numpy() == pairs["exp_unit"].to_numpy()) * 2
        + np.isclose(pairs["quantity"].to_numpy(), pairs["exp_quantity"].to_numpy())
    )
    order = np.lexsort((pairs["group"].to_numpy(), -rank, pairs["ask"].to_numpy()))
    ask = pairs["ask"].to_numpy()[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = ask[1:] != ask[:-1]
    out[ask[first]] = pairs["group"].to_numpy()[order][first]
    return out
