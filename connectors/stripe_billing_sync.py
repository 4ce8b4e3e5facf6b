"""Incremental listing of Stripe objects into the raw store, over the official client.

`StripeReads` is the reading half of connectors.stripe_billing.StripeBilling: each object type
keeps a `created` cursor in the warehouse, a run lists what was created since it less a
look-back window (plus open and draft invoices, and re-reads each stored unfinished invoice
until it is final), pages in the invoice lines, credit-note lines and refunds Stripe does not
embed, and turns Stripe's errors into SourceError / RateLimited naming the object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import stripe

from revops.connectors.page_log import PageLog
from revops.connectors.stripe_billing_config import StripeConfig
from revops.connectors.stripe_billing_http import ResilientHTTPClient
from revops.connectors.stripe_billing_store import StripeStore
from revops.errors import RateLimited, SourceError

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


class StripeReads:
    """Listing into the store; the connector holding it sets these attributes."""

    client: stripe.StripeClient
    http: ResilientHTTPClient
    store: StripeStore
    config: StripeConfig
    full_refresh: bool
    _synced: set[str]

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
        since = (params.get("created") or {}).get("gte")
        pages = PageLog("Stripe", f"{object_type} list", since=since)
        while True:
            page = self._call(f"{object_type} list", lambda: service.list(params))
            objects = [item.to_dict(for_json=True) for item in page.data]
            oldest = min((int(o.get("created") or 0) for o in objects), default=None)
            pages.page(len(objects), oldest=oldest, more=bool(page.has_more and objects))
            if object_type in ("invoices", "credit_notes"):
                for record in objects:
                    self._complete_lines(record, object_type)
            if object_type == "charges":
                for record in objects:
                    self._complete_refunds(record)
            yield objects
            if not page.has_more or not objects:
                pages.finish()
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
