"""The HTTP layer of the live Stripe source: retries, request budget and call counts.

`ResilientHTTPClient` retries 429 (honouring Retry-After and Stripe-Should-Retry), 5xx and
dropped connections with exponential backoff and jitter, never other 4xx, keeps every call
inside the request budget, and counts calls per endpoint for the run summary.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import stripe

from revops.connectors.rate_limits import Limiter
from revops.connectors.stripe_billing_config import StripeConfig


class ResilientHTTPClient(stripe.RequestsClient):
    """Stripe's requests client with our retries, request budget and call counts."""

    name = "revops-requests"

    def __init__(
        self,
        *,
        config: StripeConfig,
        limiter: Limiter,
        sleep: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ) -> None:
        super().__init__(timeout=config.timeout_seconds, **kwargs)
        self.config = config
        self.limiter = limiter
        self.sleep = sleep
        self.calls: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()

    def request(
        self, method: str, url: str, headers: Any, post_data: Any = None
    ) -> tuple[bytes, int, Any]:
        endpoint = _endpoint(method, url)
        # A POST is safe to repeat only under an idempotency key (Stripe replays the result).
        repeatable = method.lower() != "post" or any(
            k.lower() == "idempotency-key" for k in (headers or {})
        )
        attempt = 0
        while True:
            self.limiter.acquire()
            self.calls[endpoint] += 1
            try:
                content, status, response_headers = super().request(method, url, headers, post_data)
            except stripe.APIConnectionError as exc:
                if not (repeatable and exc.should_retry and attempt < self.config.max_retries):
                    raise
                delay = None
            else:
                delay = self._retry_delay(status, response_headers)
                if delay is None or not repeatable or attempt >= self.config.max_retries:
                    return content, status, response_headers
            attempt += 1
            self.retries[endpoint] += 1
            self.sleep(self._backoff(attempt) if delay is None or delay < 0 else delay)

    def _retry_delay(self, status: int, headers: Any) -> float | None:
        """None: do not retry. -1: retry after the usual backoff. Else: retry after N s."""
        should = (headers or {}).get("stripe-should-retry")
        if should == "false":
            return None
        if status == 429 or status >= 500 or status == 409 or should == "true":
            retry_after = _retry_after_seconds((headers or {}).get("retry-after"))
            return -1 if retry_after is None else min(retry_after, self.config.max_backoff_seconds)
        return None

    def _backoff(self, attempt: int) -> float:
        base = min(
            self.config.backoff_seconds * 2 ** (attempt - 1), self.config.max_backoff_seconds
        )
        return base * (0.5 + random.random() / 2)  # full jitter on the upper half


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _endpoint(method: str, url: str) -> str:
    """'GET /v1/invoices/{id}/lines' from a full URL, for per-endpoint counts."""
    path = url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
    # Ids look like in_1NabC...: a prefix, an underscore, then digits or capitals.
    parts = [
        "{id}" if "_" in part and any(c.isdigit() or c.isupper() for c in part) else part
        for part in path.split("/")
    ]
    return f"{method.upper()} /{'/'.join(parts)}"
