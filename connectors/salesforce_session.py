"""The HTTP session the live Salesforce connector hands simple-salesforce: a default timeout,
idempotent retries honouring Retry-After (a POST create is never retried), the request budget
and per-endpoint call counts."""

from __future__ import annotations

from collections import Counter
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from revops.connectors.rate_limits import Limiter, limiter_for
from revops.connectors.salesforce_settings import SalesforceConfig, SalesforceSettings


class CountingSession(requests.Session):
    """A session with a default timeout, the request budget and per-endpoint call counts."""

    def __init__(self, timeout: float, limiter: Limiter) -> None:
        super().__init__()
        self.default_timeout = timeout
        self.limiter = limiter
        self.calls: Counter[str] = Counter()

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.default_timeout)
        self.limiter.acquire()
        self.calls[endpoint(str(method), str(url))] += 1
        return super().request(method, url, *args, **kwargs)


def endpoint(method: str, url: str) -> str:
    """'GET query' / 'PATCH composite/sobjects' / 'POST oauth2/token', for call counts."""
    path = url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
    parts = path.split("/")
    if "data" in parts:
        parts = parts[parts.index("data") + 2 :]
    elif "oauth2" in parts:
        parts = parts[parts.index("oauth2") :]
    head = parts[0] if parts else ""
    if head in ("composite", "jobs", "oauth2") and len(parts) > 1:
        head = f"{parts[0]}/{parts[1]}"
    return f"{method.upper()} {head}"


def make_session(config: SalesforceConfig, settings: SalesforceSettings) -> CountingSession:
    """Our session: timeouts, idempotent retries with Retry-After, budget, counts."""
    shared = settings.prefect_rate_limit or config.prefect_rate_limit
    session = CountingSession(
        config.timeout_seconds, limiter_for(config.requests_per_second, shared)
    )
    retry = Retry(
        total=config.max_retries,
        connect=config.max_retries,
        read=config.max_retries,
        status=config.max_retries,
        # PATCH upserts on an external id are idempotent; a POST create is not.
        allowed_methods=frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"}),
        status_forcelist=(502, 503, 504),
        backoff_factor=config.backoff_seconds,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    if settings.ca_bundle:
        session.verify = settings.ca_bundle
        session.trust_env = False  # REQUESTS_CA_BUNDLE would silently override `verify`
    return session
