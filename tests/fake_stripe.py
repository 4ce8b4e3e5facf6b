"""A small Stripe-like API over real HTTP on loopback, for what localstripe lacks.

localstripe (the stateful fake the other tests use) has no disputes, no `created[gte]` list
filter (it answers 500), no proration_behavior and no fault injection. This server serves
objects in Stripe's own JSON shapes from memory with Stripe's list paging (`limit`,
`starting_after`, `has_more`), the `created[gte]` and `status` filters (subscriptions leave
out canceled ones unless `status=all`, as Stripe does), retrieval by id, invoice line paging,
charges' `refunds` only when listed with `expand[]=data.refunds` (as Stripe has done since
2022-11-15), `/v1/refunds?charge=` and `/v1/invoice_payments?invoice=` (basil and later:
a Charge has no `invoice`; InvoicePayment objects tie payments to invoices),
a request log, and a queue of faults (a status with headers and body, or a dropped
connection) consumed in order by matching requests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from revops.connectors.stripe_billing import OBJECT_TYPES


@dataclass
class Fault:
    """What to do to the next request whose path starts with `path`."""

    path: str
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    drop: bool = False


@dataclass
class FakeStripe:
    """The server's state: objects per type, the fault queue and the request log."""

    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    log: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)
    lines_per_page: int = 10
    url: str = ""

    def requests(self, path_prefix: str) -> list[dict[str, list[str]]]:
        """Query strings of the logged GET requests to paths starting with `path_prefix`."""
        return [
            q for method, path, q in self.log if path.startswith(path_prefix) and method == "GET"
        ]


class _Handler(BaseHTTPRequestHandler):
    state: FakeStripe

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            query = parse_qs(self.rfile.read(length).decode())
        self.state.log.append((method, parts.path, query))
        for fault in list(self.state.faults):
            if parts.path.startswith(fault.path):
                self.state.faults.remove(fault)
                if fault.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                body = fault.body or {"error": {"type": "api_error", "message": "injected fault"}}
                return self._send(fault.status, body, fault.headers)
        segments = [s for s in parts.path.split("/") if s][1:]  # drop "v1"
        if method == "GET" and len(segments) == 1 and segments[0] in self.state.objects:
            return self._send(200, self._list(segments[0], query))
        if method == "GET" and segments == ["refunds"]:
            charge_id = query.get("charge", [""])[0]
            found = next(
                (c for c in self.state.objects.get("charges", []) if c["id"] == charge_id), None
            )
            refunds = ((found or {}).get("refunds") or {}).get("data", [])
            return self._send(200, self._page(refunds, query, "/v1/refunds"))
        if method == "GET" and len(segments) == 2 and segments[0] in self.state.objects:
            stored = self.state.objects[segments[0]]
            found = next((o for o in stored if o["id"] == segments[1]), None)
            if found is not None:
                return self._send(200, self._render(segments[0], found))
        if (
            method == "GET"
            and len(segments) == 3
            and segments[0] == "invoices"
            and segments[2] == "lines"
        ):
            invoice = next(
                (i for i in self.state.objects.get("invoices", []) if i["id"] == segments[1]), None
            )
            if invoice is None:
                return self._send(
                    404, {"error": {"type": "invalid_request_error", "message": "No such invoice"}}
                )
            return self._send(
                200, self._page(invoice["_all_lines"], query, f"/v1/invoices/{segments[1]}/lines")
            )
        self._send(
            404,
            {
                "error": {
                    "type": "invalid_request_error",
                    "message": f"Unrecognized request URL ({parts.path})",
                }
            },
        )

    def _list(self, object_type: str, query: dict[str, list[str]]) -> dict[str, Any]:
        items = self.state.objects[object_type]
        if "created[gte]" in query:
            items = [o for o in items if o["created"] >= int(query["created[gte]"][0])]
        status = query.get("status", [None])[0]
        if status is None and object_type == "subscriptions":
            # Stripe lists only subscriptions that are not canceled unless status=all.
            items = [o for o in items if o.get("status") != "canceled"]
        elif status is not None and status != "all":
            items = [o for o in items if o.get("status") == status]
        if "invoice" in query:
            items = [o for o in items if o.get("invoice") == query["invoice"][0]]
        items = sorted(items, key=lambda o: (-o["created"], o["id"]))  # Stripe lists newest first
        page = self._page(items, query, f"/v1/{object_type}")
        expand = [v for k, vs in query.items() if k.startswith("expand") for v in vs]
        page["data"] = [self._render(object_type, o, expand) for o in page["data"]]
        return page

    def _render(
        self, object_type: str, obj: dict[str, Any], expand: list[str] | None = None
    ) -> dict[str, Any]:
        if object_type == "charges" and "data.refunds" not in (expand or []):
            return {k: v for k, v in obj.items() if k != "refunds"}  # includable only
        if object_type != "invoices":
            return obj
        lines = obj["_all_lines"]
        shown = lines[: self.state.lines_per_page]
        out = {k: v for k, v in obj.items() if k != "_all_lines"}
        out["lines"] = {
            "object": "list",
            "data": shown,
            "has_more": len(lines) > len(shown),
            "total_count": len(lines),
            "url": f"/v1/invoices/{obj['id']}/lines",
        }
        return out

    @staticmethod
    def _page(items: list[dict[str, Any]], query: dict[str, list[str]], url: str) -> dict[str, Any]:
        limit = int(query.get("limit", ["10"])[0])
        if "starting_after" in query:
            ids = [o["id"] for o in items]
            start = ids.index(query["starting_after"][0]) + 1
            items = items[start:]
        return {"object": "list", "url": url, "has_more": len(items) > limit, "data": items[:limit]}

    def _send(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Request-Id", "req_fake")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)


@contextmanager
def fake_stripe(objects: dict[str, list[dict[str, Any]]] | None = None) -> Iterator[FakeStripe]:
    """Run the fake Stripe API on a free loopback port for the duration of the block."""
    # Stripe answers an empty list, not a 404, for a list the account has nothing in.
    lists = OBJECT_TYPES
    state = FakeStripe(objects={**{name: [] for name in lists}, **(objects or {})})
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def invoice(
    invoice_id: str,
    created: int,
    lines: int = 1,
    status: str = "paid",
    customer: str = "cus_A",
    subscription: str = "sub_1",
    amount: int = 10_000,
) -> dict[str, Any]:
    """A current-shape invoice with `lines` subscription lines (kept whole in `_all_lines`)."""
    all_lines = [
        {
            "id": f"il_{invoice_id}_{n}",
            "object": "line_item",
            "amount": amount,
            "currency": "usd",
            "description": "1 x Seat",
            "quantity": 1,
            "discount_amounts": [],
            "taxes": [],
            "period": {"start": created, "end": created + 30 * 86_400},
            "parent": {
                "type": "subscription_item_details",
                "subscription_item_details": {"subscription": subscription, "proration": False},
            },
            "pricing": {
                "type": "price_details",
                "price_details": {"price": "price_seat"},
                "unit_amount_decimal": str(amount),
            },
        }
        for n in range(lines)
    ]
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": customer,
        "status": status,
        "currency": "usd",
        "created": created,
        "subtotal": amount * lines,
        "total": amount * lines,
        "amount_paid": amount * lines,
        "amount_due": amount * lines,
        "total_taxes": [],
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": subscription},
        },
        "_all_lines": all_lines,
    }
