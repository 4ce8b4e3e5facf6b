"""Prices and subscriptions as Stripe returns them, as rows a plan is resolved against. Pure."""

from __future__ import annotations

from typing import Any

import pandas as pd

from revops.money import stripe_to_minor

CATALOGUE_COLUMNS = [
    "price_id",
    "active",
    "currency",
    "unit_amount_minor",
    "interval",
    "interval_count",
]


def catalogue_entry(obj: dict[str, Any]) -> dict[str, Any]:
    """A catalogue row from a Stripe price, or from a plan (the older form of a price)."""
    currency = str(obj.get("currency") or "").upper() or None
    if obj.get("object") == "price" or "unit_amount" in obj:
        recurring = obj.get("recurring") or {}  # None on a one-time price
        amount = obj.get("unit_amount")
        interval, count = recurring.get("interval"), recurring.get("interval_count")
    else:
        amount, interval, count = obj.get("amount"), obj.get("interval"), obj.get("interval_count")
    return {
        "price_id": obj["id"],
        "active": bool(obj.get("active", True)),
        "currency": currency,
        "unit_amount_minor": (
            None if amount is None or currency is None else stripe_to_minor(int(amount), currency)
        ),
        "interval": interval,
        "interval_count": None if count is None else int(count),
    }


def catalogue_frame(entries: list[dict[str, Any]]) -> pd.DataFrame:
    """The price catalogue: one row per known price (unknown prices are simply absent)."""
    frame = pd.DataFrame(entries, columns=CATALOGUE_COLUMNS)
    return frame.astype(
        {
            "price_id": "str",
            "active": "bool",
            "unit_amount_minor": "Int64",
            "interval_count": "Int64",
        }
    ).drop_duplicates("price_id", keep="last")


def catalogue_from_subscriptions(subscriptions: pd.DataFrame) -> pd.DataFrame:
    """A catalogue of the prices subscriptions are on (the demo book has no price list)."""
    prices = subscriptions.dropna(subset=["price_id"]).drop_duplicates("price_id")
    return catalogue_frame(
        [
            {
                "price_id": r.price_id,
                "active": True,
                "currency": r.currency,
                "unit_amount_minor": None if pd.isna(r.unit_amount_minor) else r.unit_amount_minor,
                "interval": None if pd.isna(r.interval) else r.interval,
                "interval_count": None if pd.isna(r.interval_count) else r.interval_count,
            }
            for r in prices.itertuples(index=False)
        ]
    )


def subscription_items(subscription: dict[str, Any]) -> list[dict[str, Any]]:
    """The items of a Stripe subscription object: item id, price id, quantity, amounts."""
    out = []
    for item in (subscription.get("items") or {}).get("data", []):
        price = item.get("price") if isinstance(item.get("price"), dict) else item.get("plan")
        entry = catalogue_entry(price) if isinstance(price, dict) else {}
        out.append(
            {
                "item_id": item.get("id"),
                "price_id": entry.get("price_id"),
                "quantity": None if item.get("quantity") is None else int(item["quantity"]),
                "unit_amount_minor": entry.get("unit_amount_minor"),
                "currency": entry.get("currency"),
                "interval": entry.get("interval"),
                "interval_count": entry.get("interval_count"),
            }
        )
    return out


def item_on(subscription: dict[str, Any], price_id: str) -> dict[str, Any] | None:
    """The subscription's item on `price_id`, or None."""
    return next((i for i in subscription_items(subscription) if i["price_id"] == price_id), None)


def subscription_state(subscription: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """What the ledger keeps of a subscription: enough to verify it and to restore it."""
    return {
        "subscription_id": subscription.get("id"),
        "status": subscription.get("status"),
        **item,
    }
