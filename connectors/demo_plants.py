"""Which contracts of the demo book carry which planted finding (the reconciliation oracle).

`PLANT_CODES` maps each kind of plant to the codes reconciliation must report for it, and
nothing else in the window; a kind with no codes is a clean case the reconciler must not flag.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from revops.connectors.demo_common import (
    DemoSpec,
    Plant,
    billed_as_coupon,
    coupon_discount_minor,
    period_unit_price_minor,
)
from revops.connectors.demo_lines import LINE_PLANT_CODES
from revops.errors import ConfigError
from revops.frames import DATE, FREQUENCY_MONTHS
from revops.periods import add_months, periods_elapsed

PLANT_CODES: dict[str, tuple[str, ...]] = {
    "missing": ("missing_invoice",),
    "credit": ("underbilled",),
    "fee": ("overbilled",),
    "old_price": ("price_mismatch", "underbilled"),
    "extra_seats": ("quantity_mismatch", "overbilled"),
    "wrong_currency": ("currency_mismatch",),
    "duplicate": ("duplicate_invoice", "overbilled"),
    "after_end": ("billed_outside_contract",),
    "draft_billed": ("billed_outside_contract",),
    "orphan": ("unmatched_invoice",),
    "addon": ("unexpected_item",),
}


ALL_CODES = PLANT_CODES | LINE_PLANT_CODES


def choose_plants(
    spec: DemoSpec, contracts: pd.DataFrame, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Pick distinct, plain monthly contracts that bill the window, one set per plant kind."""
    w0, w1 = pd.Timestamp(spec.window.start), pd.Timestamp(spec.window.end)
    eligible = (
        (contracts["status"] == "Activated")
        & (contracts["billing_frequency"] == "monthly")
        & contracts["sub_on_contract"]
        & (contracts["start_date"] <= w0 - pd.Timedelta(days=70))
        & (contracts["end_date"] >= w1 + pd.Timedelta(days=70))
        & (contracts["currency"] == "USD")
    ).to_numpy()
    # Contract-level plants change status/dates; keep them off accounts with two contracts.
    single = ~contracts["account_id"].duplicated(keep=False).to_numpy()
    candidates = np.flatnonzero(eligible & single)
    per_kind = max(1, spec.size // 400)
    kinds = [k for k in PLANT_CODES if k != "orphan"]
    needed = per_kind * len(kinds)
    if len(candidates) < needed:
        raise ConfigError(f"demo size {spec.size} is too small to plant every finding")
    chosen = rng.choice(candidates, needed, replace=False)
    plants = {
        kind: np.sort(chosen[i * per_kind : (i + 1) * per_kind]) for i, kind in enumerate(kinds)
    }
    plants["orphan"] = np.arange(per_kind)
    return plants


def apply_contract_plants(
    spec: DemoSpec, contracts: pd.DataFrame, plants: dict[str, np.ndarray]
) -> pd.DataFrame:
    """Contract-side plants: a contract ended before its window period, one left a Draft."""
    out = contracts.copy()
    rows = plants["after_end"]
    # The contract ended before its window period; the subscription kept billing.
    window_period = window_period_start(spec, out.iloc[rows])
    out.loc[out.index[rows], "end_date"] = (window_period - pd.Timedelta(days=1)).to_numpy()
    out.loc[out.index[rows], "status"] = "Expired"
    out.loc[out.index[rows], "auto_renew"] = False
    out.loc[out.index[plants["draft_billed"]], "status"] = "Draft"
    return out


def window_period_start(spec: DemoSpec, contracts: pd.DataFrame) -> pd.Series:
    """The start of each contract's first period starting in the window."""
    months = contracts["billing_frequency"].map(FREQUENCY_MONTHS).to_numpy()
    at = pd.Series(np.full(len(contracts), np.datetime64(spec.window.start)), index=contracts.index)
    k = periods_elapsed(contracts["start_date"], at.astype(DATE), months)
    start = add_months(contracts["start_date"], k * months)
    return start.where(
        start >= pd.Timestamp(spec.window.start),
        add_months(contracts["start_date"], (k + 1) * months),
    )


def planted_list(
    plants: dict[str, np.ndarray],
    contract_ids: list[str],
    money: dict[int, int | None],
    silent: set[int] = frozenset(),
) -> list[Plant]:
    """The plants chosen, as Plant rows with the codes each must produce (none if silent)."""
    contracts = contract_ids
    out: list[Plant] = []
    for kind, rows in plants.items():
        for row in rows:
            if kind == "orphan":
                out.append(Plant(kind, None, f"in_orphan{row + 1:05d}", PLANT_CODES[kind]))
            else:
                codes = () if row in silent else ALL_CODES[kind]
                out.append(Plant(kind, contracts[row], None, codes, money.get(int(row))))
    return out


def base_plant_money(
    spec: DemoSpec, book: dict[str, pd.DataFrame], plants: dict[str, np.ndarray]
) -> dict[int, int | None]:
    """Per contract row of a base plant: billed less expected for its window period.

    Expected is the demo's own price (period_unit_price_minor x quantity; nothing for a
    contract that is not active); billed is every non-void line Stripe billed for the period.
    A currency mismatch is not money.
    """
    contracts, invoices, lines = book["contracts"], book["invoices"], book["invoice_lines"]
    net = _billed_near_window(spec, contracts, invoices, lines, plants)
    money: dict[int, int | None] = {}
    for kind, rows in plants.items():
        if kind in ("orphan", "wrong_currency") or not len(rows):
            continue
        chosen = contracts.iloc[rows]
        unit = period_unit_price_minor(chosen)
        coupon = billed_as_coupon(np.asarray(rows), chosen["discount_pct"].to_numpy())
        for row, (_, contract), each, by_coupon in zip(
            rows, chosen.iterrows(), unit, coupon, strict=True
        ):
            active = kind not in ("after_end", "draft_billed")
            expected = int(each) * int(contract["quantity"])
            if by_coupon and kind != "old_price":  # the coupon is rounded on the line total
                gross = int(contract["unit_price_minor"]) * int(contract["quantity"])
                expected = gross - int(
                    coupon_discount_minor(np.array([gross]), np.array([contract["discount_pct"]]))[
                        0
                    ]
                )
            expected = expected if active else 0
            money[int(row)] = net.get(int(row), 0) - expected
    return money


def _billed_near_window(
    spec: DemoSpec,
    contracts: pd.DataFrame,
    invoices: pd.DataFrame,
    lines: pd.DataFrame,
    plants: dict[str, np.ndarray],
) -> dict[int, int]:
    """Per planted contract row: the net of its subscription's non-void lines whose period
    starts within two days of its window period (one join, not a scan per plant)."""
    rows = np.concatenate(
        [r for kind, r in plants.items() if kind not in ("orphan", "wrong_currency")] or [[]]
    ).astype(np.int64)
    chosen = contracts.iloc[rows]
    wanted = pd.DataFrame(
        {
            "row": rows,
            "subscription_id": chosen["stripe_sub"].to_numpy(),
            "start": window_period_start(spec, chosen).to_numpy(),
        }
    )
    status = lines["invoice_id"].map(invoices.set_index("invoice_id")["status"])
    live = lines[(status.notna() & (status != "void")).to_numpy()]
    billed = pd.DataFrame(
        {
            "subscription_id": live["subscription_id"].to_numpy(),
            "line_start": live["period_start"].dt.tz_localize(None).to_numpy(),
            "net": (live["amount_minor"] - live["discount_minor"]).to_numpy(),
        }
    )
    joined = wanted.merge(billed, on="subscription_id")
    near = (joined["line_start"] - joined["start"]).abs() <= pd.Timedelta(days=2)
    sums = joined[near.to_numpy()].groupby("row")["net"].sum()
    return {int(row): int(value) for row, value in sums.items()}
