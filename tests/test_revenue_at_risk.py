"""Revenue at risk (tasks.revenue_at_risk) on literal frames: annualised value per contract,
per tier and currency (never summed across currencies), top accounts per currency, and the
risk.md section."""

from __future__ import annotations

import pandas as pd

from revops.tasks.revenue_at_risk import (
    BY_TIER_COLUMNS,
    annual_values,
    revenue_by_tier,
    revenue_markdown,
    top_at_risk,
)
from revops.tasks.risk_tasks import risk_markdown
from tests.builders import AS_OF, contract, frame

SCORES = pd.DataFrame(
    {
        "account_id": ["001A", "001B", "001C", "001D"],
        "account_name": ["Acme | Co", "Globex", "Initech", "Hooli"],
        "tier": ["at_risk", "at_risk", "watch", "healthy"],
        "score": [40, 73, 70, 95],
        "cap": ["", "at_risk", "", ""],
        "cap_reason": ["", "capped at at_risk: chargeback lost (opened 2026-10-06)", "", ""],
        "newly_at_risk": [True, True, False, False],
        "reasons": ["usage down", "", "", ""],
        "owner_id": ["005U1"] * 4,
        "previous_tier": [None] * 4,
    }
)


def contracts() -> pd.DataFrame:
    return frame(
        "contracts",
        [
            # USD 100.00 a seat a month, 10 seats, 10% off: USD 10,800.00 a year.
            contract("800A", "001A", unit_price_minor=10_000, quantity=10, discount_pct=10.0),
            # Quarterly JPY 3,000 a seat a month x 3 months x 5 seats x 4 quarters.
            contract(
                "800B",
                "001B",
                currency="JPY",
                billing_frequency="quarterly",
                unit_price_minor=3_000,
                quantity=5,
            ),
            contract("800B2", "001B", unit_price_minor=1_000, quantity=1),
            contract("800C", "001C", unit_price_minor=5_000, quantity=2),
            contract("800D", "001D", unit_price_minor=5_000, quantity=2),
            contract("800X", "001A", status="Expired", end_date="2026-10-31"),
            contract("800F", "001D", start_date="2027-01-01", end_date="2027-12-31"),
        ],
    )


def test_annual_values_per_account_and_currency() -> None:
    values = annual_values(contracts(), AS_OF, ["Activated"]).set_index(["account_id", "currency"])
    assert values["annual_minor"].to_dict() == {
        ("001A", "USD"): 1_080_000,
        ("001B", "JPY"): 180_000,
        ("001B", "USD"): 12_000,
        ("001C", "USD"): 120_000,
        ("001D", "USD"): 120_000,
    }


def test_by_tier_never_sums_currencies() -> None:
    values = annual_values(contracts(), AS_OF, ["Activated"])
    table = revenue_by_tier(SCORES, values)
    assert list(table.columns) == BY_TIER_COLUMNS
    rows = {(r.tier, r.currency): (r.accounts, r.annual_minor) for r in table.itertuples()}
    assert rows == {
        ("at_risk", "JPY"): (1, 180_000),
        ("at_risk", "USD"): (2, 1_092_000),
        ("watch", "USD"): (1, 120_000),
        ("healthy", "USD"): (1, 120_000),
    }
    usd_at_risk = table[(table["tier"] == "at_risk") & (table["currency"] == "USD")]
    assert usd_at_risk["share_pct"].item() == round(1_092_000 * 100 / 1_332_000, 1)
    assert list(table["tier"]) == ["at_risk", "at_risk", "watch", "healthy"]


def test_top_accounts_are_ranked_within_their_currency() -> None:
    values = annual_values(contracts(), AS_OF, ["Activated"])
    top = top_at_risk(SCORES, values, n=1)
    assert list(zip(top["currency"], top["account_id"], strict=True)) == [
        ("JPY", "001B"),
        ("USD", "001A"),
    ]
    lines = revenue_markdown(revenue_by_tier(SCORES, values), top)
    text = "\n".join(lines)
    assert "| at_risk | JPY | 1 | JPY 180,000 | 100.0% |" in text
    assert "| Acme \\| Co (001A) | — | 40 | — | USD 10,800.00 |" in text  # the pipe is escaped
    assert "| Globex (001B) | — | 73 | at_risk | JPY 180,000 |" in text


def test_risk_md_carries_the_section_and_an_empty_book_says_so() -> None:
    values = annual_values(contracts(), AS_OF, ["Activated"])
    revenue = (revenue_by_tier(SCORES, values), top_at_risk(SCORES, values))
    markdown = risk_markdown(SCORES, AS_OF, "demo", None, revenue)
    assert "## Revenue at risk (annualised contract value)" in markdown
    assert "### Top accounts at risk by value" in markdown
    empty = annual_values(frame("contracts", []), AS_OF, ["Activated"])
    assert revenue_markdown(revenue_by_tier(SCORES, empty), top_at_risk(SCORES, empty))[2] == (
        "No active contracts."
    )
