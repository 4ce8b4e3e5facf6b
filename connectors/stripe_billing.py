"""The live Stripe source and writer, over the official `stripe` client.

`StripeBilling.from_settings()` builds its own `StripeClient` (no global `stripe.api_key`)
with a pinned API version, timeouts, and `ResilientHTTPClient` (connectors.stripe_billing_http:
retries, request budget, call counts). Settings are connectors.stripe_billing_config.

Reads are incremental: each object type keeps a `created` cursor in the warehouse and the
objects themselves in a raw store there, so a run fetches only what was created since the
cursor less a look-back window (plus open and draft invoices), and the canonical frames are
mapped (connectors.stripe_mapping) from the whole store (connectors.stripe_billing_store).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import stripe

from revops.connectors import stripe_credits, stripe_mapping, stripe_mapping_arrow
from revops.connectors.page_log import PageLog
from revops.connectors.rate_limits import limiter_for
from revops.connectors.stripe_billing_config import StripeConfig, StripeSettings, stripe_config
from revops.connectors.stripe_billing_http import ResilientHTTPClient
from revops.connectors.stripe_billing_store import STORE_FILE, StripeStore, store_location
from revops.connectors.warehouse import Warehouse
from revops.errors import RateLimited, SourceError
from revops.frames import SourceLocation, validate_frame

__all__ = [
    "ResilientHTTPClient",
    "StripeBilling",
    "StripeConfig",
    "StripeSettings",
    "StripeStore",
    "stripe_config",
]

UNFINISHED = ("open", "draft")  # invoice statuses that still change; the others are final
OBJECT_TYPES = (
    "customers",
    "subscriptions",
    "invoices",
    "charges",
    "disputes",
    "credit_notes",
    "invoice_payments",
)


class StripeBilling:
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

    def _sync(self, object_type: str) -> None:
        """Fetch what changed since the cursor (everything on a full refresh) into the store."""
        if object_type in self._synced:
            return
        whole = self.full_refresh or object_type in self.config.read_whole
        cursor = None if whole else self.store.cursor(object_type)
        params: dict[str, Any] = {"limit": self.config.page_size}
        if object_type == "disputes":
            params["expand"] = ["data.charge"]  # the customer is on the charge
        if object_type == "charges":
            params["expand"] = ["data.refunds"]  # not included by default since 2022-11-15
        if object_type == "subscriptions":
            params["status"] = "all"  # Stripe leaves cancelled ones out by default
        if cursor is not None:
            lookback = self.config.lookback_days.get(object_type, 0) * 86_400
            params["created"] = {"gte": cursor - lookback}
        fetched: dict[str, dict[str, Any]] = {}
        for page in self._pages(object_type, params):
            fetched.update((o["id"], o) for o in page)
        if object_type == "invoices" and cursor is not None:
            for status in ("open", "draft"):  # unsettled invoices, however old
                for page in self._pages(
                    object_type, {"limit": self.config.page_size, "status": status}
                ):
                    fetched.update((o["id"], o) for o in page)
        if object_type == "invoices" and cursor is not None:
            fetched.update(self._settle_unfinished(fetched))
        newest = max((int(o.get("created") or 0) for o in fetched.values()), default=None)
        new_cursor = max(filter(None, (cursor, newest)), default=None)
        self.store.save(object_type, list(fetched.values()), new_cursor, replace_all=whole)

        self._synced.add(object_type)

    def _settle_unfinished(self, fetched: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Re-read each stored open or draft invoice this run did not see, whatever its age.

        The look-back and the status lists miss one that left open for void, paid or
        uncollectible long after its creation: it would stay open in the store and keep
        counting as billed. One call per such invoice, until it reaches a final status.
        """
        out: dict[str, dict[str, Any]] = {}
        for stored in self.store.with_status("invoices", UNFINISHED):
            if stored["id"] in fetched:
                continue
            invoice = self._call(
                f"invoice {stored['id']}",
                lambda i=stored["id"]: self.client.v1.invoices.retrieve(i),
            ).to_dict(for_json=True)
            self._complete_lines(invoice)
            out[invoice["id"]] = invoice
        return out

    def _pages(self, object_type: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Pages of plain dicts, following starting_after while has_more."""
        service = getattr(self.client.v1, object_type)
        params = dict(params)
        pages = PageLog("Stripe", f"{object_type} list")
        while True:
            page = self._call(f"{object_type} list", lambda: service.list(params))
            objects = [item.to_dict(for_json=True) for item in page.data]
            pages.page(len(objects))
            if object_type in ("invoices", "credit_notes"):
                for record in objects:
                    self._complete_lines(record, object_type)
            if object_type == "charges":
                for record in objects:
                    self._complete_refunds(record)
            yield objects
            if not page.has_more or not objects:
                return
            params["starting_after"] = objects[-1]["id"]

    def _complete_refunds(self, charge: dict[str, Any]) -> None:
        """Page in the refunds of a charge beyond the first page its expanded list holds."""
        refunds = charge.get("refunds") or {}
        if not refunds.get("has_more"):
            return
        data = list(refunds.get("data", []))
        while True:
            params = {"limit": self.config.page_size, "charge": charge["id"]}
            if data:
                params["starting_after"] = data[-1]["id"]
            page = self._call(
                f"refunds of charge {charge['id']}",
                lambda p=params: self.client.v1.refunds.list(p),
            )
            data.extend(item.to_dict(for_json=True) for item in page.data)
            if not page.has_more or not page.data:
                break
        charge["refunds"] = {**refunds, "data": data, "has_more": False}

    def _complete_lines(self, invoice: dict[str, Any], object_type: str = "invoices") -> None:
        """Page in the lines beyond the first handful Stripe embeds (invoices, credit notes)."""
        service = getattr(self.client.v1, object_type).line_items
        lines = invoice.get("lines") or {}
        if not lines.get("has_more"):
            return
        data = list(lines.get("data", []))
        while True:
            params = {"limit": self.config.page_size, "starting_after": data[-1]["id"]}
            page = self._call(
                f"lines of invoice {invoice['id']}",
                lambda p=params: service.list(invoice["id"], p),
            )
            data.extend(item.to_dict(for_json=True) for item in page.data)
            if not page.has_more or not page.data:
                break
        invoice["lines"] = {**lines, "data": data, "has_more": False}

    def _call(self, what: str, action: Callable[[], Any]) -> Any:
        """Run one API call; Stripe errors become SourceError naming the object."""
        try:
            result = action()
        except stripe.RateLimitError as exc:
            raise RateLimited(
                f"Stripe rate limit on {what} persisted after retries: {exc.user_message or exc}"
            ) from None
        except stripe.AuthenticationError:
            raise SourceError("Stripe rejected the API key (401): check STRIPE_API_KEY") from None
        except stripe.InvalidRequestError as exc:
            raise SourceError(
                f"Stripe refused the request for {what}: {exc.user_message or exc}"
            ) from None
        except stripe.APIConnectionError as exc:
            raise SourceError(
                f"could not reach Stripe for {what} after retries: {exc.user_message or exc}",
                transient=True,
            ) from None
        except stripe.StripeError as exc:
            raise SourceError(
                f"Stripe failed on {what}: {exc.user_message or exc}",
                transient=(exc.http_status or 0) >= 500,
            ) from None
        return result
