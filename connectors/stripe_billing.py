"""The live Stripe source and writer, over the official `stripe` client.

`StripeBilling.from_settings()` builds its own `StripeClient` (no global `stripe.api_key`)
with a pinned API version, timeouts, and `ResilientHTTPClient` (connectors.stripe_billing_http:
retries, request budget, call counts). Settings are connectors.stripe_billing_config.

Reads are incremental: each object type keeps a `created` cursor in the warehouse and the
objects themselves in a raw store there, so a run fetches only what was created since the
cursor less a look-back window (plus open and draft invoices), and the canonical frames are
mapped (connectors.stripe_mapping) from the whole store (connectors.stripe_billing_store).
The listing itself is connectors.stripe_billing_sync (StripeReads, which this class extends).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import stripe

from revops.connectors import stripe_credits, stripe_mapping, stripe_mapping_arrow
from revops.connectors.rate_limits import limiter_for
from revops.connectors.stripe_billing_config import StripeConfig, StripeSettings, stripe_config
from revops.connectors.stripe_billing_http import ResilientHTTPClient
from revops.connectors.stripe_billing_store import STORE_FILE, StripeStore, store_location
from revops.connectors.stripe_billing_sync import OBJECT_TYPES, StripeReads
from revops.connectors.warehouse import Warehouse
from revops.errors import SourceError
from revops.frames import SourceLocation, validate_frame

__all__ = [
    "OBJECT_TYPES",
    "ResilientHTTPClient",
    "StripeBilling",
    "StripeConfig",
    "StripeSettings",
    "StripeStore",
    "stripe_config",
]


class StripeBilling(StripeReads):
    """BillingSource over the Stripe API, and the BillingWriter plan migrations write through."""

    name = "stripe"

    def __init__(
        self,
        client: stripe.StripeClient,
        http: ResilientHTTPClient,
        store: StripeStore,
        config: StripeConfig,
        full_refresh: bool = False,
    ) -> None:
        self.client = client
        self.http = http
        self.store = store
        self.config = config
        self.full_refresh = full_refresh
        self._synced: set[str] = set()
        self._invoice_frames: tuple[pd.DataFrame, pd.DataFrame] | None = None
        self._credit_grants: pd.DataFrame | None = None

    @classmethod
    def from_settings(
        cls,
        warehouse: Warehouse,
        settings: StripeSettings | None = None,
        config: StripeConfig | None = None,
        full_refresh: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> StripeBilling:
        """A connector with its own client, reading credentials inside the run."""
        settings = settings or StripeSettings()
        config = config or stripe_config()
        http = ResilientHTTPClient(
            config=config,
            limiter=limiter_for(
                config.requests_per_second, settings.prefect_rate_limit or config.prefect_rate_limit
            ),
            sleep=sleep,
        )
        client = stripe.StripeClient(
            settings.key(),
            stripe_version=config.api_version,
            base_addresses={"api": settings.api_base} if settings.api_base else None,
            max_network_retries=0,  # ResilientHTTPClient retries; never both
            http_client=http,
        )
        return cls(client, http, StripeStore(warehouse), config, full_refresh)

    # -- BillingSource ---------------------------------------------------------------------

    def customers(self) -> pd.DataFrame:
        return self._frame("customers", stripe_mapping.customers_frame)

    def subscriptions(self) -> pd.DataFrame:
        return self._frame("subscriptions", stripe_mapping.subscriptions_frame)

    def invoices(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        if self._invoice_frames is None:
            self._sync("invoices")
            try:  # column-wise; record by record when that read cannot vouch for the store
                fast = stripe_mapping_arrow.read_invoice_texts(self.store.payloads("invoices"))
                invoices, lines = fast["invoices"], fast["invoice_lines"]
                line_rows, self._credit_grants = fast["line_rows"], fast["credit_grants"]
            except stripe_mapping_arrow.Unsure:
                objects = self.store.objects("invoices")
                invoices, lines = stripe_mapping.invoices_frames(objects, file=STORE_FILE)
                line_rows = stripe_mapping.invoice_line_rows(objects)
            self._invoice_frames = (
                validate_frame(
                    "invoices", invoices, store_location("invoices", range(1, len(invoices) + 1))
                ),
                validate_frame("invoice_lines", lines, store_location("invoice_lines", line_rows)),
            )
        return self._invoice_frames

    def charges(self) -> pd.DataFrame:
        return self._frame("charges", stripe_mapping.charges_frame)

    def disputes(self) -> pd.DataFrame:
        return self._frame("disputes", stripe_mapping.disputes_frame)

    def money_given_back(self) -> dict[str, pd.DataFrame]:
        """Credit notes (listed incrementally like invoices), credit grants and refunds.

        Grants come from the stored invoices, refunds from the stored charges (listed with
        `refunds` expanded; without the list, `amount_refunded`), tied to their invoices by
        the invoice payments (on the pinned version a charge does not name its invoice).
        """
        self._sync("credit_notes")
        objects = self.store.objects("credit_notes")
        notes, lines = stripe_credits.credit_notes_frames(objects, file=STORE_FILE)
        line_rows = stripe_credits.credit_note_line_rows(objects)
        self.invoices()
        self._sync("charges")
        self._sync("invoice_payments")
        charges = stripe_credits.charges_with_invoices(
            self.store.objects("charges"), self.store.objects("invoice_payments")
        )
        out = {
            "credit_notes": validate_frame(
                "credit_notes", notes, store_location("credit_notes", range(1, len(objects) + 1))
            ),
            "credit_note_lines": validate_frame(
                "credit_note_lines", lines, store_location("credit_note_lines", line_rows)
            ),
        }
        if self._credit_grants is not None:
            out["credit_grants"] = validate_frame(
                "credit_grants", self._credit_grants, SourceLocation(file=STORE_FILE)
            )
        for name, stored, mapper in (
            ("credit_grants", None, stripe_credits.credit_grants_frame),
            ("refunds", charges, stripe_credits.refunds_frame),
        ):
            if name in out:
                continue
            if stored is None:
                stored = self.store.objects("invoices")
            out[name] = validate_frame(
                name, mapper(stored, file=STORE_FILE), SourceLocation(file=STORE_FILE)
            )
        return out

    @property
    def calls(self) -> dict[str, int]:
        """API calls made so far, per endpoint (retries included)."""
        return dict(self.http.calls)

    # -- writes ----------------------------------------------------------------------------

    def change_subscription_price(
        self,
        subscription_id: str,
        item_id: str,
        new_price: str,
        *,
        idempotency_key: str,
        proration_behavior: str | None = None,
        quantity: int | None = None,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Move one subscription item to `new_price`; applied once per idempotency key.

        A retry or a re-run with the same key gets Stripe's stored result instead of a
        second change (keys derive from the migration plan and the account).
        """
        item: dict[str, Any] = {"id": item_id, self.config.item_price_param: new_price}
        if quantity is not None:
            item["quantity"] = quantity
        params: dict[str, Any] = {"items": [item]}
        if proration_behavior:
            params["proration_behavior"] = proration_behavior
        if metadata:
            params["metadata"] = metadata
        return self._call(
            f"subscription {subscription_id}",
            lambda: self.client.v1.subscriptions.update(
                subscription_id, params, {"idempotency_key": idempotency_key}
            ),
        ).to_dict(for_json=True)

    def preview_price_change(
        self,
        customer_id: str,
        subscription_id: str,
        item_id: str,
        new_price: str,
        proration_behavior: str = "create_prorations",
        quantity: int | None = None,
    ) -> dict[str, Any]:
        """The invoice Stripe would issue after the change (nothing is changed).

        Give the quantity: without it a preview prices the item at quantity 1.
        """
        item: dict[str, Any] = {"id": item_id, self.config.item_price_param: new_price}
        if quantity is not None:
            item["quantity"] = quantity
        params = {
            "customer": customer_id,
            "subscription": subscription_id,
            "subscription_details": {"items": [item], "proration_behavior": proration_behavior},
        }
        return self._call(
            f"preview for {subscription_id}", lambda: self.client.v1.invoices.create_preview(params)
        ).to_dict(for_json=True)

    def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        return self._call(
            f"subscription {subscription_id}",
            lambda: self.client.v1.subscriptions.retrieve(subscription_id),
        ).to_dict(for_json=True)

    def retrieve_price(self, price_id: str) -> dict[str, Any] | None:
        """A price as Stripe returns it; None when there is no such price.

        Falls back to the plans endpoint on a 404: plans are the older form of prices (a plan
        id works as a price id), and a test server (localstripe) knows only plans.
        """
        for endpoint in (self.client.v1.prices, self.client.v1.plans):
            try:
                return endpoint.retrieve(price_id).to_dict(for_json=True)
            except stripe.StripeError as exc:
                if exc.http_status != 404:
                    raise SourceError(
                        f"Stripe failed on price {price_id}: {exc.user_message or exc}",
                        transient=isinstance(exc, stripe.APIConnectionError)
                        or (exc.http_status or 0) >= 500,
                    ) from None
        return None

    # -- reading ---------------------------------------------------------------------------

    def _frame(self, object_type: str, mapper: Callable[..., pd.DataFrame]) -> pd.DataFrame:
        self._sync(object_type)
        objects = self.store.objects(object_type)
        frame = mapper(objects, file=STORE_FILE)
        rows = (
            stripe_mapping.subscription_rows(objects)
            if object_type == "subscriptions"
            else range(1, len(objects) + 1)
        )
        return validate_frame(object_type, frame, store_location(object_type, rows))
