"""The embedded default: a deterministic demo book of business, no credentials needed.

`DemoSource(as_of, size, seed)` generates accounts, contracts, Stripe customers,
subscriptions, invoices with lines, charges, disputes, cases, opportunities and daily usage,
vectorised with numpy so it scales to 100k contracts and about a million invoice lines.

The mix is realistic (USD, EUR, GBP, JPY, KWD; monthly, quarterly and annual billing;
discounts billed as discounted prices or as coupons; sales tax and VAT; void invoices with a
replacement; anchors a day off the CRM date) and every reconciliation code is planted in the
month before `as_of` (the default window). `planted` lists the plants and the codes each must
produce; every other contract period in that window reconciles clean. The parts: demo_contracts
(CRM side and billing calendar), demo_invoices (Stripe side), demo_activity (payments, cases,
opportunities, usage), demo_plants (which contract carries which finding), demo_health.
"""

from __future__ import annotations

from datetime import date
from functools import cached_property

import numpy as np
import pandas as pd

from revops.connectors.choices import DEMO_SEED, DEMO_SIZE
from revops.connectors.demo_activity import cases, opportunities, payments, usage
from revops.connectors.demo_common import Plant, sf_ids
from revops.connectors.demo_contracts import billed_periods, contracts_and_accounts, customers
from revops.connectors.demo_health import choose_health_accounts, plant_alarms, plant_hygiene
from revops.connectors.demo_invoices import invoices, priced_lines, subscriptions
from revops.connectors.demo_line_book import metered_usage, plant_lines
from revops.connectors.demo_plants import (
    PLANT_CODES,
    apply_contract_plants,
    base_plant_money,
    choose_plants,
    planted_list,
)
from revops.connectors.demo_users import demo_users
from revops.errors import ConfigError
from revops.frames import conform, validate_frame
from revops.periods import parse_period, previous_month

__all__ = ["MIN_SIZE", "PLANT_CODES", "DemoSource", "Plant"]

MIN_SIZE = 200


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
        alarms = self._book["health_plants"].get("alarms")
        seats_and_calls = usage(self, self.contracts(), alarms, start, end)
        events = metered_usage(self.contracts(), self._book["line_plants"], self.seed, start, end)
        if events.empty:
            return seats_and_calls
        both = pd.concat([seats_and_calls, events], ignore_index=True)
        return validate_frame("usage", conform("usage", both))

    def money_given_back(self) -> dict[str, pd.DataFrame]:
        """Canonical credit_notes, credit_note_lines, credit_grants and refunds (CreditSource)."""
        return dict(self._book["given_back"])

    def subscription_schedules(self) -> list[dict]:
        """The Stripe subscription schedules billing the ramps, as the API returns them."""
        return [dict(s) for s in self._book["subscription_schedules"]]

    def contract_lines(self) -> pd.DataFrame:
        return self._book["contract_lines"]

    def users(self) -> pd.DataFrame:
        return demo_users()

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
        contracts, accounts = contracts_and_accounts(self, rng)
        stripe_customers = customers(self, accounts)
        plants = choose_plants(self, contracts, rng)
        contracts = apply_contract_plants(self, contracts, plants)
        periods = billed_periods(self, contracts, plants, rng)
        bills, lines, orphan_customers = invoices(self, periods, plants, rng)
        stripe_customers = pd.concat([stripe_customers, orphan_customers], ignore_index=True)
        contract_lines = priced_lines(contracts.iloc[plants["addon"]], periods)
        charges, disputes = payments(bills, rng)
        book = {
            "accounts": accounts,
            "contracts": contracts,
            "customers": stripe_customers,
            "subscriptions": subscriptions(contracts),
            "invoices": bills,
            "invoice_lines": lines,
            "contract_lines": contract_lines,
            "charges": charges,
            "disputes": disputes,
            "cases": cases(self, accounts, rng),
            "opportunities": opportunities(self, contracts, accounts, rng),
        }
        taken = {int(r) for kind, rows in plants.items() if kind != "orphan" for r in rows}
        money = base_plant_money(self, book, plants)
        book, line_plants, given_back, silent, line_money, schedules = plant_lines(
            self, book, contracts, taken
        )
        contracts = book["contracts"]
        book["contracts"] = contracts.drop(columns=["customer_id", "sub_on_contract", "stripe_sub"])
        planted_contracts = {
            c
            for kind_plants in (plants, line_plants)
            for kind, rows in kind_plants.items()
            if kind != "orphan"
            for c in contracts["contract_id"].to_numpy()[rows]
        }
        health = choose_health_accounts(book, planted_contracts, self.as_of)
        if "alarms" in health:
            book = plant_alarms(book, health["alarms"], self.as_of)
        book, hygiene = plant_hygiene(book, self.as_of, self.window.start)
        health = health | hygiene
        validated = {name: validate_frame(name, conform(name, f)) for name, f in book.items()}
        ids = list(sf_ids("800", np.arange(self.size) + 1))
        validated["planted"] = planted_list(plants, ids, money) + planted_list(
            line_plants, ids, line_money, silent
        )
        validated["given_back"] = {
            name: validate_frame(name, conform(name, f)) for name, f in given_back.items()
        }
        validated["line_plants"] = line_plants
        validated["subscription_schedules"] = schedules
        validated["health_plants"] = health
        return validated
