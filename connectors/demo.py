"""The embedded default: a deterministic demo book of business, no credentials needed.

`DemoSource(as_of, size, seed)` generates accounts, contracts, Stripe customers,
subscriptions, invoices with lines, charges, disputes, cases, opportunities and daily usage,
vectorised with numpy so it scales to 100k contracts and about a million invoice lines.

The mix is realistic (USD, EUR, GBP, JPY, KWD; monthly, quarterly and annual billing;
discounts billed as discounted prices or as coupons; sales tax and VAT; void invoices with a
replacement; anchors a day off the CRM date) and every reconciliation code is planted in the
month before `as_of` (the default window). `planted` lists the plants and the codes each must
produce; every other contract period in that window reconciles clean.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property

import numpy as np
import pandas as pd

from revops.connectors.choices import DEMO_SEED, DEMO_SIZE
from revops.connectors.demo_health import (
    choose_health_accounts,
    full_use,
    plant_alarms,
    plant_hygiene,
)
from revops.errors import ConfigError
from revops.frames import DATE, FREQUENCY_MONTHS, conform, validate_frame
from revops.periods import add_months, parse_period, periods_elapsed, previous_month

# (currency, share of contracts, list prices per seat per month in minor units)
_CURRENCIES: list[tuple[str, float, list[int]]] = [
    ("USD", 0.50, [1500, 2500, 4900, 9900, 19900]),
    ("EUR", 0.20, [1400, 2200, 4500, 8900]),
    ("GBP", 0.12, [1200, 2000, 3900, 7900]),
    ("JPY", 0.12, [2000, 4800, 9800, 15000]),
    ("KWD", 0.06, [4500, 9000, 15500]),  # fils: 4.500 KWD
]
_FREQUENCIES = (["monthly", "quarterly", "annual"], [0.62, 0.2, 0.18])
_DISCOUNTS = ([0.0, 5.0, 10.0, 12.5, 15.0, 20.0], [0.55, 0.1, 0.12, 0.08, 0.1, 0.05])
_SEGMENTS = (["smb", "mid_market", "enterprise"], [0.55, 0.3, 0.15])
_TAX_BP = {"USD": 825, "EUR": 2000, "GBP": 2000, "JPY": 1000, "KWD": 0}
_OWNERS = [f"005DEMO{n:011d}" for n in range(1, 9)]
_NAME_HEADS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Wonka",
    "Aperture",
    "Gringotts",
    "Pied Piper",
]
_NAME_TAILS = [
    "Analytics",
    "Logistics",
    "Foods",
    "Health",
    "Labs",
    "Systems",
    "Retail",
    "Capital",
    "Media",
    "Robotics",
    "Energy",
    "Studios",
]
MIN_SIZE = 200
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


def _hashed_uniform(a: np.ndarray, b: np.ndarray, seed: int) -> np.ndarray:
    """Uniform (0, 1) numbers that depend only on (a, b, seed): a splitmix64 hash."""
    with np.errstate(over="ignore"):
        z = (
            a * np.uint64(0x9E3779B97F4A7C15)
            + b * np.uint64(0xBF58476D1CE4E5B9)
            + np.uint64(seed) * np.uint64(0x94D049BB133111EB)
        )
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53


def _hashed_normal(a: np.ndarray, b: np.ndarray, seed: int) -> np.ndarray:
    """Standard normal numbers that depend only on (a, b, seed) (Box-Muller)."""
    u1 = _hashed_uniform(a, b, seed)
    u2 = _hashed_uniform(a, b, seed + 7_919)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pd.Series:
    return prefix + pd.Series(numbers).astype(str).str.zfill(width)


def _sf_ids(prefix: str, numbers: np.ndarray) -> pd.Series:
    """Salesforce-style 18-character ids: key prefix + zero padding."""
    return _ids(prefix + "DEMO", numbers, 11)


def _instants(dates: pd.Series, seconds: np.ndarray) -> pd.Series:
    base = pd.to_datetime(dates.to_numpy(dtype="datetime64[s]"), utc=True)
    return pd.Series(base + pd.to_timedelta(seconds, unit="s"), index=dates.index).astype(
        "datetime64[us, UTC]"
    )


@dataclass(frozen=True)
class Plant:
    """One planted finding: the contract or invoice it is on and the codes it must produce."""

    kind: str
    contract_id: str | None
    invoice_id: str | None
    codes: tuple[str, ...]


def _period_unit_price_minor(contracts: pd.DataFrame) -> np.ndarray:
    """What the demo book bills per unit for one full period, in minor units.

    Computed here, apart from the reconciler (decimal arithmetic, half up, per contract), so
    the demo book is an independent oracle of the planted findings: a rounding bug in
    `tasks.expected_billing` shows as findings the book did not plant.
    """
    months = contracts["billing_frequency"].map(FREQUENCY_MONTHS)
    prices = [
        int(
            (Decimal(int(unit)) * int(m) * (1 - Decimal(str(pct)) / 100)).quantize(
                Decimal(1), rounding=ROUND_HALF_UP
            )
        )
        for unit, m, pct in zip(
            contracts["unit_price_minor"], months, contracts["discount_pct"], strict=True
        )
    ]
    return np.asarray(prices, dtype=np.int64)


def _coupon_discount_minor(amounts: np.ndarray, pct: np.ndarray) -> np.ndarray:
    """A percent-off coupon's discount on each line total, rounded half up as Stripe does."""
    return np.asarray(
        [
            int((Decimal(int(a)) * Decimal(str(p)) / 100).quantize(Decimal(1), ROUND_HALF_UP))
            for a, p in zip(amounts, pct, strict=True)
        ],
        dtype=np.int64,
    )


def _priced_lines(contracts: pd.DataFrame, periods: pd.DataFrame) -> pd.DataFrame:
    """One seats line per contract, on the Stripe price its invoices bill."""
    unit = periods.drop_duplicates("contract_row").set_index("contract_row")["unit_minor"]
    price = (
        "price_"
        + contracts["currency"].str.lower()
        + "_"
        + unit.reindex(contracts.index).astype("int64").astype(str).to_numpy()
    )
    return pd.DataFrame(
        {
            "line_id": contracts["contract_id"] + "-L1",
            "contract_id": contracts["contract_id"],
            "account_id": contracts["account_id"],
            "product_id": "01tDEMOSEATS0001",
            "product_name": None,  # Product2.Name is not on OrderItem: exports carry the id
            "start_date": contracts["start_date"],
            "end_date": contracts["end_date"],
            "stripe_price_id": price,
            "charge_type": "recurring",
            "quantity": contracts["quantity"].astype("float64"),
            "unit_price_minor": contracts["unit_price_minor"],
            "currency": contracts["currency"],
        }
    )


class DemoSource:
    """Deterministic demo data implementing BillingSource, CrmSource and UsageSource."""

    name = "demo"

    def __init__(
        self,
        as_of: date,
        size: int = DEMO_SIZE,
        seed: int = DEMO_SEED,
        history_months: int = 24,
    ):
        if size < MIN_SIZE:
            raise ConfigError(
                f"the demo needs at least {MIN_SIZE} contracts to plant every finding"
            )
        self.as_of = as_of
        self.size = size
        self.seed = seed
        self.history_months = history_months
        self.window = parse_period(previous_month(as_of))

    # -- protocol methods --------------------------------------------------------------

    def accounts(self) -> pd.DataFrame:
        return self._book["accounts"]

    def contracts(self) -> pd.DataFrame:
        return self._book["contracts"]

    def customers(self) -> pd.DataFrame:
        return self._book["customers"]

    def subscriptions(self) -> pd.DataFrame:
        return self._book["subscriptions"]

    def invoices(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        return self._book["invoices"], self._book["invoice_lines"]

    def charges(self) -> pd.DataFrame:
        return self._book["charges"]

    def disputes(self) -> pd.DataFrame:
        return self._book["disputes"]

    def cases(self) -> pd.DataFrame:
        return self._book["cases"]

    def opportunities(self) -> pd.DataFrame:
        return self._book["opportunities"]

    def usage(self, start: date, end: date) -> pd.DataFrame:
        return self._usage(start, end)

    def contract_lines(self) -> pd.DataFrame:
        return self._book["contract_lines"]

    @property
    def planted(self) -> list[Plant]:
        """The planted findings in `window` (the month before as_of)."""
        return self._book["planted"]

    def health_plants(self) -> dict[str, str]:
        """Planted health cases (connectors.demo_health): plant name -> account id."""
        return dict(self._book["health_plants"])

    # -- generation --------------------------------------------------------------------

    @cached_property
    def _book(self) -> dict:
        rng = np.random.default_rng(self.seed)
        contracts, accounts = self._contracts_and_accounts(rng)
        customers = self._customers(accounts, rng)
        plants = self._choose_plants(contracts, rng)
        contracts = self._apply_contract_plants(contracts, plants)
        periods = self._billed_periods(contracts, plants, rng)
        invoices, lines, orphan_customers = self._invoices(periods, plants, customers, rng)
        customers = pd.concat([customers, orphan_customers], ignore_index=True)
        subscriptions = self._subscriptions(contracts, customers)
        contract_lines = _priced_lines(contracts.iloc[plants["addon"]], periods)
        charges, disputes = self._payments(invoices, rng)
        book = {
            "accounts": accounts,
            "contracts": contracts.drop(columns=["customer_id", "sub_on_contract", "stripe_sub"]),
            "customers": customers,
            "subscriptions": subscriptions,
            "invoices": invoices,
            "invoice_lines": lines,
            "contract_lines": contract_lines,
            "charges": charges,
            "disputes": disputes,
            "cases": self._cases(accounts, rng),
            "opportunities": self._opportunities(contracts, accounts, rng),
        }
        planted_contracts = {
            c for rows in plants.values() for c in contracts["contract_id"].to_numpy()[rows]
        }
        health = choose_health_accounts(book, planted_contracts, self.as_of)
        if "alarms" in health:
            book = plant_alarms(book, health["alarms"], self.as_of)
        book, hygiene = plant_hygiene(book, self.as_of, self.window.start)
        health = health | hygiene
        validated = {name: validate_frame(name, conform(name, f)) for name, f in book.items()}
        validated["planted"] = self._planted_list(plants)
        validated["health_plants"] = health
        return validated

    def _contracts_and_accounts(
        self, rng: np.random.Generator
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        n = self.size
        n_accounts = n - n // 10  # a tenth of accounts also have an earlier, expired contract
        as_of = pd.Timestamp(self.as_of)
        idx = np.arange(n)
        account_of = np.where(idx < n_accounts, idx, rng.integers(0, n_accounts, n))
        earlier = idx >= n_accounts

        currency_idx = rng.choice(len(_CURRENCIES), n, p=[c[1] for c in _CURRENCIES])
        # An account bills in one currency: the earlier contract takes the account's.
        currency_idx = currency_idx[account_of]
        unit = np.empty(n, dtype=np.int64)
        for i, (_, _, prices) in enumerate(_CURRENCIES):
            mask = currency_idx == i
            unit[mask] = rng.choice(prices, mask.sum())
        currency = np.array([c[0] for c in _CURRENCIES])[currency_idx]
        frequency = rng.choice(_FREQUENCIES[0], n, p=_FREQUENCIES[1])
        discount = rng.choice(_DISCOUNTS[0], n, p=_DISCOUNTS[1])
        segment_of_account = rng.choice(_SEGMENTS[0], n_accounts, p=_SEGMENTS[1])
        seat_scale = pd.Series(segment_of_account[account_of]).map(
            {"smb": 8, "mid_market": 40, "enterprise": 180}
        )
        quantity = np.maximum(1, (rng.lognormal(0, 0.6, n) * seat_scale).astype(np.int64))
        term = rng.choice([12, 24, 36], n, p=[0.6, 0.25, 0.15])
        months_ago = rng.integers(1, 30, n)
        day_of_month = rng.integers(1, 29, n)
        day_of_month[rng.random(n) < 0.04] = 31  # month-end anchors
        first = add_months(pd.Series(np.full(n, as_of.replace(day=1))).astype(DATE), -months_ago)
        start = add_months(first, 0) + pd.to_timedelta(np.minimum(day_of_month, 28) - 1, unit="D")
        start = start.where(day_of_month != 31, add_months(first, 1) - pd.Timedelta(days=1))
        # Earlier contracts end the day before the account's current contract starts.
        current_start = start.to_numpy()[account_of]
        start = start.where(~earlier, add_months(pd.Series(current_start).astype(DATE), -term))
        start = start.astype(DATE)
        end = (add_months(start, term) - pd.Timedelta(days=1)).astype(DATE)
        status = np.where(end < as_of, "Expired", "Activated")
        sub_on_contract = rng.random(n) < 0.75
        contract_ids = _sf_ids("800", idx + 1)
        account_ids = _sf_ids("001", np.arange(n_accounts) + 1)
        contracts = pd.DataFrame(
            {
                "contract_id": contract_ids,
                "account_id": account_ids.to_numpy()[account_of],
                "status": status,
                "start_date": start,
                "end_date": end,
                "currency": currency,
                "billing_frequency": frequency,
                "unit_price_minor": unit,
                "quantity": quantity,
                "discount_pct": discount,
                "auto_renew": rng.random(n) < 0.6,
                "owner_id": np.array(_OWNERS)[rng.integers(0, len(_OWNERS), n)],
                "stripe_sub": _ids("sub_demo", idx + 1, 8),
                "sub_on_contract": sub_on_contract,
                "customer_id": _ids("cus_demo", account_of + 1, 7),
            }
        )
        contracts["stripe_subscription_id"] = contracts["stripe_sub"].where(sub_on_contract)
        names = (
            pd.Series(np.array(_NAME_HEADS)[np.arange(n_accounts) % len(_NAME_HEADS)])
            + " "
            + pd.Series(
                np.array(_NAME_TAILS)[
                    (np.arange(n_accounts) // len(_NAME_HEADS)) % len(_NAME_TAILS)
                ]
            )
            + " "
            + pd.Series(np.arange(n_accounts) + 1).astype(str)
        )
        customer_ids = _ids("cus_demo", np.arange(n_accounts) + 1, 7)
        linked_in_crm = np.arange(n_accounts) % 2 == 0  # the other half link via Stripe metadata
        accounts = pd.DataFrame(
            {
                "account_id": account_ids,
                "name": names,
                "owner_id": np.array(_OWNERS)[np.arange(n_accounts) % len(_OWNERS)],
                "stripe_customer_id": customer_ids.where(linked_in_crm),
                "segment": segment_of_account,
            }
        )
        return contracts, accounts

    def _customers(self, accounts: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        n = len(accounts)
        linked_in_crm = accounts["stripe_customer_id"].notna()
        return pd.DataFrame(
            {
                "customer_id": _ids("cus_demo", np.arange(n) + 1, 7),
                "name": accounts["name"],
                # One domain per company (head + number): shared domains mean duplicates.
                "email": "billing@"
                + accounts["name"].str.split(" ").str[0].str.lower()
                + (np.arange(n) + 1).astype(str)
                + ".example",
                "currency": None,
                "salesforce_account_id": accounts["account_id"].where(~linked_in_crm),
                "created_at": pd.Timestamp(self.as_of - timedelta(days=1100), tz="UTC"),
            }
        )

    def _choose_plants(
        self, contracts: pd.DataFrame, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Pick distinct, plain monthly contracts that bill the window, one set per plant kind."""
        w0, w1 = pd.Timestamp(self.window.start), pd.Timestamp(self.window.end)
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
        per_kind = max(1, self.size // 400)
        kinds = [k for k in PLANT_CODES if k != "orphan"]
        needed = per_kind * len(kinds)
        if len(candidates) < needed:
            raise ConfigError(f"demo size {self.size} is too small to plant every finding")
        chosen = rng.choice(candidates, needed, replace=False)
        plants = {
            kind: np.sort(chosen[i * per_kind : (i + 1) * per_kind]) for i, kind in enumerate(kinds)
        }
        plants["orphan"] = np.arange(per_kind)
        return plants

    def _apply_contract_plants(
        self, contracts: pd.DataFrame, plants: dict[str, np.ndarray]
    ) -> pd.DataFrame:
        out = contracts.copy()
        rows = plants["after_end"]
        # The contract ended before its window period; the subscription kept billing.
        window_period = self._window_period_start(out.iloc[rows])
        out.loc[out.index[rows], "end_date"] = (window_period - pd.Timedelta(days=1)).to_numpy()
        out.loc[out.index[rows], "status"] = "Expired"
        out.loc[out.index[rows], "auto_renew"] = False
        out.loc[out.index[plants["draft_billed"]], "status"] = "Draft"
        return out

    def _window_period_start(self, contracts: pd.DataFrame) -> pd.Series:
        months = contracts["billing_frequency"].map(FREQUENCY_MONTHS).to_numpy()
        at = pd.Series(
            np.full(len(contracts), np.datetime64(self.window.start)), index=contracts.index
        )
        k = periods_elapsed(contracts["start_date"], at.astype(DATE), months)
        start = add_months(contracts["start_date"], k * months)
        return start.where(
            start >= pd.Timestamp(self.window.start),
            add_months(contracts["start_date"], (k + 1) * months),
        )

    def _billed_periods(
        self, contracts: pd.DataFrame, plants: dict[str, np.ndarray], rng: np.random.Generator
    ) -> pd.DataFrame:
        """One row per billed contract period from the history start up to as_of."""
        as_of = pd.Timestamp(self.as_of)
        history_start = pd.Timestamp(self.as_of.replace(day=1)) - pd.DateOffset(
            months=self.history_months
        )
        billed = contracts["status"].isin(["Activated", "Expired", "Draft"]).to_numpy()
        months = contracts["billing_frequency"].map(FREQUENCY_MONTHS).to_numpy()
        last_day = contracts["end_date"].where(contracts["end_date"] < as_of, as_of)
        # The after_end plants keep billing through as_of.
        after_end = np.zeros(len(contracts), dtype=bool)
        after_end[plants["after_end"]] = True
        last_day = last_day.where(~after_end, as_of)
        hist = pd.Series(
            np.full(len(contracts), history_start.to_datetime64()), index=contracts.index
        ).astype(DATE)
        k_first = np.maximum(periods_elapsed(contracts["start_date"], hist, months), 0)
        first_start = add_months(contracts["start_date"], k_first * months)
        k_first = np.where(first_start < history_start, k_first + 1, k_first)
        k_last = periods_elapsed(contracts["start_date"], last_day.astype(DATE), months)
        count = np.where(billed, np.maximum(k_last - k_first + 1, 0), 0)
        rows = np.repeat(np.arange(len(contracts)), count)
        offset = np.arange(len(rows)) - np.repeat(np.cumsum(count) - count, count)
        periods = contracts.iloc[rows].reset_index(drop=True)
        periods["contract_row"] = rows
        k = k_first[rows] + offset
        m = months[rows]
        periods["period_start"] = add_months(periods["start_date"], k * m)
        periods["period_end"] = add_months(periods["start_date"], (k + 1) * m)
        periods["unit_minor"] = _period_unit_price_minor(periods)
        periods["in_window"] = self.window.contains(periods["period_start"])
        return periods

    def _invoices(
        self,
        periods: pd.DataFrame,
        plants: dict[str, np.ndarray],
        customers: pd.DataFrame,
        rng: np.random.Generator,
    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        n = len(periods)
        as_of = pd.Timestamp(self.as_of)
        plant_of = np.full(n, "", dtype=object)
        for kind, rows in plants.items():
            if kind != "orphan":
                plant_of[
                    np.isin(periods["contract_row"].to_numpy(), rows)
                    & periods["in_window"].to_numpy()
                ] = kind
        keep = plant_of != "missing"
        periods = periods[keep].reset_index(drop=True)
        plant_of = plant_of[keep]
        n = len(periods)

        quantity = periods["quantity"].to_numpy().copy()
        unit = periods["unit_minor"].to_numpy().copy()
        quantity[plant_of == "extra_seats"] += 5
        unit[plant_of == "old_price"] = unit[plant_of == "old_price"] * 8 // 10
        currency = periods["currency"].to_numpy().copy()
        currency[plant_of == "wrong_currency"] = "EUR"
        # A third of discounted contracts bill list price less a coupon, not a discounted price.
        coupon = (periods["discount_pct"].to_numpy() > 0) & (
            periods["contract_row"].to_numpy() % 3 == 0
        )
        months = periods["billing_frequency"].map(FREQUENCY_MONTHS).to_numpy()
        list_unit = periods["unit_price_minor"].to_numpy() * months
        line_unit = np.where(coupon & (plant_of != "old_price"), list_unit, unit)
        amount = line_unit * quantity
        # Stripe rounds a percent-off coupon on the line's total, not per unit.
        discount = np.where(
            coupon & (plant_of != "old_price"),
            _coupon_discount_minor(amount, periods["discount_pct"].to_numpy()),
            0,
        )
        # Stripe anchors on the subscription's creation instant: some a day before the CRM date.
        shift_days = np.where(rng.random(n) < 0.05, -1, 0)
        seconds = rng.integers(0, 86_400, n) + shift_days * 86_400
        period_start = _instants(periods["period_start"], seconds)
        period_end = _instants(periods["period_end"], seconds)
        invoice_ids = _ids("in_demo", np.arange(n) + 1, 8)
        age = (as_of - periods["period_start"]).dt.days.to_numpy()
        status = np.where(age > 25, "paid", "open").astype(object)
        status[(rng.random(n) < 0.02) & (age > 60)] = "uncollectible"
        tax_bp = periods["currency"].map(_TAX_BP).to_numpy() * (
            periods["contract_row"].to_numpy() % 5 < 2
        )
        subtotal = amount - discount
        tax = (subtotal * tax_bp + 5_000) // 10_000
        invoices = pd.DataFrame(
            {
                "invoice_id": invoice_ids,
                "number": "DEMO-" + pd.Series(np.arange(n) + 1).astype(str).str.zfill(6),
                "customer_id": periods["customer_id"],
                "subscription_id": periods["stripe_sub"],
                "status": status,
                "currency": currency,
                "created_at": period_start,
                "period_start": period_start,
                "period_end": period_start,
                "subtotal_minor": subtotal,
                "tax_minor": tax,
                "total_minor": subtotal + tax,
                "amount_paid_minor": np.where(status == "paid", subtotal + tax, 0),
                "amount_due_minor": subtotal + tax,
                "billing_reason": "subscription_cycle",
            }
        )
        lines = pd.DataFrame(
            {
                "line_id": _ids("il_demo", np.arange(n) + 1, 8),
                "invoice_id": invoice_ids,
                "subscription_id": periods["stripe_sub"],
                "line_type": "subscription",
                "price_id": "price_"
                + periods["currency"].str.lower()
                + "_"
                + pd.Series(unit).astype(str),
                "description": periods["quantity"].astype(str) + " seat(s)",
                "quantity": quantity,
                "unit_amount_minor": line_unit,
                "amount_minor": amount,
                "discount_minor": discount,
                "currency": currency,
                "period_start": period_start,
                "period_end": period_end,
                "proration": False,
            }
        )
        extra_invoices, extra_lines = [], []
        # Planted one-off lines on the window invoice: a service credit and an onboarding fee.
        for kind, sign, text in (("credit", -1, "Service credit"), ("fee", 1, "Onboarding fee")):
            hit = lines[plant_of == kind]
            item = hit.assign(
                line_id=hit["line_id"] + "x",
                line_type="invoiceitem",
                price_id=None,
                description=text,
                quantity=1,
                unit_amount_minor=sign * (hit["amount_minor"] // 5),
                amount_minor=sign * (hit["amount_minor"] // 5),
                discount_minor=0,
            )
            extra_lines.append(item)
        # An add-on item on the subscription that no line of the contract has.
        hit = lines[plant_of == "addon"]
        extra_lines.append(
            hit.assign(
                line_id=hit["line_id"] + "a",
                price_id="price_demo_addon",
                description="1 x Add-on",
                quantity=1,
                unit_amount_minor=2_500,
                amount_minor=2_500,
                discount_minor=0,
            )
        )
        # Duplicates: the same period invoiced twice, both paid.
        dup = plant_of == "duplicate"
        extra_invoices.append(invoices[dup].assign(invoice_id=invoices["invoice_id"] + "d"))
        extra_lines.append(
            lines[dup].assign(invoice_id=lines["invoice_id"] + "d", line_id=lines["line_id"] + "d")
        )
        # Void invoices with a corrected replacement: clean for reconciliation.
        void = (rng.random(n) < 0.02) & (plant_of == "")
        extra_invoices.append(
            invoices[void].assign(
                invoice_id=invoices["invoice_id"] + "v", status="void", amount_paid_minor=0
            )
        )
        extra_lines.append(
            lines[void].assign(
                invoice_id=lines["invoice_id"] + "v",
                line_id=lines["line_id"] + "v",
                quantity=lines["quantity"] + 1,
                amount_minor=lines["unit_amount_minor"] * (lines["quantity"] + 1),
            )
        )
        orphans, orphan_customers = self._orphans(plants["orphan"], rng)
        invoices = pd.concat([invoices, *extra_invoices, orphans[0]], ignore_index=True)
        lines = pd.concat([lines, *extra_lines, orphans[1]], ignore_index=True)
        return invoices, lines, orphan_customers

    def _orphans(
        self, rows: np.ndarray, rng: np.random.Generator
    ) -> tuple[tuple[pd.DataFrame, pd.DataFrame], pd.DataFrame]:
        """Stripe customers linked to no CRM account, billed in the window."""
        n = len(rows)
        ids = _ids("cus_orphan", np.arange(n) + 1, 5)
        start = pd.Series([pd.Timestamp(self.window.start) + pd.Timedelta(days=3)] * n).astype(DATE)
        begins = _instants(start, np.full(n, 36_000))
        ends = _instants(add_months(start, 1), np.full(n, 36_000))
        invoice_ids = _ids("in_orphan", np.arange(n) + 1, 5)
        amount = np.full(n, 49_900)
        invoices = pd.DataFrame(
            {
                "invoice_id": invoice_ids,
                "number": None,
                "customer_id": ids,
                "subscription_id": _ids("sub_orphan", np.arange(n) + 1, 5),
                "status": "paid",
                "currency": "USD",
                "created_at": begins,
                "period_start": begins,
                "period_end": begins,
                "subtotal_minor": amount,
                "tax_minor": 0,
                "total_minor": amount,
                "amount_paid_minor": amount,
                "amount_due_minor": amount,
                "billing_reason": "subscription_cycle",
            }
        )
        lines = pd.DataFrame(
            {
                "line_id": _ids("il_orphan", np.arange(n) + 1, 5),
                "invoice_id": invoice_ids,
                "subscription_id": invoices["subscription_id"],
                "line_type": "subscription",
                "price_id": "price_usd_49900",
                "description": "Team plan",
                "quantity": 1,
                "unit_amount_minor": amount,
                "amount_minor": amount,
                "discount_minor": 0,
                "currency": "USD",
                "period_start": begins,
                "period_end": ends,
                "proration": False,
            }
        )
        customers = pd.DataFrame(
            {
                "customer_id": ids,
                "name": "Self-serve signup " + pd.Series(np.arange(n) + 1).astype(str),
                "email": None,
                "currency": "USD",
                "salesforce_account_id": None,
                "created_at": begins,
            }
        )
        return (invoices, lines), customers

    def _planted_list(self, plants: dict[str, np.ndarray]) -> list[Plant]:
        contracts = self._contract_ids
        out: list[Plant] = []
        for kind, rows in plants.items():
            for row in rows:
                if kind == "orphan":
                    out.append(Plant(kind, None, f"in_orphan{row + 1:05d}", PLANT_CODES[kind]))
                else:
                    out.append(Plant(kind, contracts[row], None, PLANT_CODES[kind]))
        return out

    @cached_property
    def _contract_ids(self) -> list[str]:
        return list(_sf_ids("800", np.arange(self.size) + 1))

    def _subscriptions(self, contracts: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
        billing = contracts[contracts["status"].isin(["Activated", "Draft"])]
        unit = _period_unit_price_minor(billing)
        months = billing["billing_frequency"].map(FREQUENCY_MONTHS)
        return pd.DataFrame(
            {
                "subscription_id": billing["stripe_sub"],
                "item_id": "si_" + billing["stripe_sub"].str[4:],
                "customer_id": billing["customer_id"],
                "status": "active",
                "currency": billing["currency"],
                "price_id": "price_"
                + billing["currency"].str.lower()
                + "_"
                + pd.Series(unit, index=billing.index).astype(str),
                "quantity": billing["quantity"],
                "unit_amount_minor": unit,
                "interval": np.where(months == 12, "year", "month"),
                "interval_count": np.where(months == 12, 1, months),
                "created_at": _instants(billing["start_date"], np.full(len(billing), 36_000)),
                "current_period_end": None,
                "cancel_at_period_end": ~billing["auto_renew"],
                "salesforce_contract_id": billing["contract_id"],
            }
        )

    def _payments(
        self, invoices: pd.DataFrame, rng: np.random.Generator
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """A charge per collected or attempted invoice; failures and disputes on some."""
        billable = invoices[
            (invoices["status"] != "void") & (invoices["total_minor"] > 0)
        ].reset_index(drop=True)
        n = len(billable)
        failed = (billable["status"] != "paid").to_numpy() & (rng.random(n) < 0.6)
        charges = pd.DataFrame(
            {
                "charge_id": _ids("ch_demo", np.arange(n) + 1, 8),
                "customer_id": billable["customer_id"],
                "invoice_id": billable["invoice_id"],
                "amount_minor": billable["total_minor"],
                "amount_refunded_minor": 0,
                "currency": billable["currency"],
                "status": np.where(
                    failed, "failed", np.where(billable["status"] == "paid", "succeeded", "pending")
                ),
                "failure_code": np.where(
                    failed,
                    rng.choice(["card_declined", "insufficient_funds", "expired_card"], n),
                    None,
                ),
                "disputed": False,
                "created_at": billable["created_at"] + pd.Timedelta(hours=1),
            }
        )
        succeeded = np.flatnonzero(charges["status"].to_numpy() == "succeeded")
        chosen = (
            rng.choice(succeeded, max(1, len(succeeded) // 150), replace=False)
            if len(succeeded)
            else succeeded
        )
        charges.loc[chosen, "disputed"] = True
        picked = charges.loc[chosen]
        statuses = rng.choice(
            ["needs_response", "under_review", "won", "lost"], len(picked), p=[0.3, 0.25, 0.25, 0.2]
        )
        created = picked["created_at"] + pd.to_timedelta(rng.integers(5, 40, len(picked)), unit="D")
        disputes = pd.DataFrame(
            {
                "dispute_id": _ids("dp_demo", np.arange(len(picked)) + 1, 6),
                "charge_id": picked["charge_id"].to_numpy(),
                "customer_id": picked["customer_id"].to_numpy(),
                "amount_minor": picked["amount_minor"].to_numpy(),
                "currency": picked["currency"].to_numpy(),
                "status": statuses,
                "reason": rng.choice(
                    ["fraudulent", "product_not_received", "subscription_canceled", "duplicate"],
                    len(picked),
                ),
                "created_at": created.to_numpy(),
                "evidence_due_by": (created + pd.Timedelta(days=14)).to_numpy(),
            }
        )
        return charges, disputes

    def _cases(self, accounts: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        counts = rng.poisson(1.4, len(accounts))
        rows = np.repeat(np.arange(len(accounts)), counts)
        n = len(rows)
        created = pd.Timestamp(self.as_of, tz="UTC") - pd.to_timedelta(
            rng.integers(1, 120 * 86_400, n), unit="s"
        )
        closed = rng.random(n) < 0.7
        closed_at = created + pd.to_timedelta(rng.integers(3_600, 20 * 86_400, n), unit="s")
        closed = closed & (closed_at <= pd.Timestamp(self.as_of, tz="UTC"))
        # A separate stream, so adding response times did not change the rest of the book.
        responses = np.random.default_rng(self.seed + 2)
        hours = responses.lognormal(np.log(3), 1.0, n)
        first_response = created + pd.to_timedelta(np.rint(hours * 3_600), unit="s")
        responded = (first_response <= pd.Timestamp(self.as_of, tz="UTC")) & (
            closed | (responses.random(n) < 0.85)
        )
        return pd.DataFrame(
            {
                "case_id": _sf_ids("500", np.arange(n) + 1),
                "account_id": accounts["account_id"].to_numpy()[rows],
                "subject": rng.choice(
                    [
                        "Login issue",
                        "Invoice question",
                        "Feature request",
                        "Outage report",
                        "Data export",
                    ],
                    n,
                ),
                "status": np.where(
                    closed,
                    "Closed",
                    rng.choice(["New", "Working", "Escalated"], n, p=[0.4, 0.45, 0.15]),
                ),
                "priority": rng.choice(["Low", "Medium", "High"], n, p=[0.45, 0.4, 0.15]),
                "is_closed": closed,
                "created_at": created.astype("datetime64[us, UTC]"),
                "closed_at": pd.Series(closed_at).where(closed).astype("datetime64[us, UTC]"),
                "owner_id": np.array(_OWNERS)[rows % len(_OWNERS)],
                "first_response_at": pd.Series(first_response)
                .where(responded)
                .astype("datetime64[us, UTC]"),
            }
        )

    def _opportunities(
        self, contracts: pd.DataFrame, accounts: pd.DataFrame, rng: np.random.Generator
    ) -> pd.DataFrame:
        """Open renewal opportunities for half the contracts ending within 90 days."""
        as_of = pd.Timestamp(self.as_of)
        ending = contracts[
            (contracts["status"] == "Activated")
            & (contracts["end_date"] >= as_of)
            & (contracts["end_date"] <= as_of + pd.Timedelta(days=90))
        ]
        ending = ending[np.arange(len(ending)) % 2 == 0]
        unit = _period_unit_price_minor(ending)
        months = ending["billing_frequency"].map(FREQUENCY_MONTHS).to_numpy()
        annual = unit * ending["quantity"].to_numpy() * (12 // months)
        n = len(ending)
        return pd.DataFrame(
            {
                "opportunity_id": _sf_ids("006", np.arange(n) + 1),
                "account_id": ending["account_id"].to_numpy(),
                "contract_id": ending["contract_id"].to_numpy(),
                "name": "Renewal " + ending["contract_id"].to_numpy(),
                "type": "Renewal",
                "stage": rng.choice(["Prospecting", "Negotiation/Review"], n),
                "is_closed": False,
                "close_date": ending["end_date"].to_numpy(),
                "amount_minor": annual,
                "currency": ending["currency"].to_numpy(),
                "owner_id": ending["owner_id"].to_numpy(),
                "revops_key": None,
            }
        )

    def _usage(self, start: date, end: date) -> pd.DataFrame:
        """Daily active seats and API calls; some accounts decline, some outgrow their seats."""
        contracts = self.contracts()
        current = contracts[contracts["status"] == "Activated"].drop_duplicates("account_id")
        days = pd.date_range(start, end - timedelta(days=1), freq="D")
        if len(days) == 0 or current.empty:
            return conform("usage", pd.DataFrame())
        rng = np.random.default_rng(self.seed + 1)
        n_acc, n_days = len(current), len(days)
        # Per-account draws first; the daily noise is a function of (seed, account, day), so a
        # day's usage is the same whatever window is asked for.
        profile = rng.choice(["steady", "declining", "growing"], n_acc, p=[0.84, 0.08, 0.08])
        utilisation = np.where(profile == "growing", 0.97, rng.uniform(0.45, 0.9, n_acc))
        calls_per_seat = rng.uniform(80, 120, n_acc)
        seats = current["quantity"].to_numpy()
        day_index = (days - pd.Timestamp(self.as_of)).days.to_numpy()  # negative in the past
        decline = np.where((profile == "declining")[:, None] & (day_index[None, :] > -30), 0.4, 1.0)
        account_number = current.index.to_numpy(dtype=np.uint64)[:, None]
        epoch_day = (days - pd.Timestamp("1970-01-01")).days.to_numpy().astype(np.uint64)[None, :]
        noise = 1.0 + 0.05 * _hashed_normal(account_number, epoch_day, self.seed)
        active = np.clip(np.rint(seats[:, None] * utilisation[:, None] * decline * noise), 0, None)
        active = np.minimum(active, np.ceil(seats[:, None] * 1.1))
        alarms = (current["account_id"] == self._book["health_plants"].get("alarms")).to_numpy()
        active = full_use(active, seats, alarms)
        frame = pd.DataFrame(
            {
                "account_id": np.repeat(current["account_id"].to_numpy(), n_days),
                "date": np.tile(days.to_numpy(), n_acc),
                "metric": "active_seats",
                "quantity": active.ravel().astype(np.float64),
            }
        )
        calls = frame.assign(
            metric="api_calls",
            quantity=np.rint(frame["quantity"] * np.repeat(calls_per_seat, n_days)),
        )
        out = pd.concat([frame, calls], ignore_index=True)
        out["date"] = out["date"].astype(DATE)
        return validate_frame("usage", conform("usage", out))
