"""The live Salesforce source and write-back, over simple-salesforce and our own session.

`SalesforceCrm.from_settings()` logs in (session id + instance URL, username/password/token,
JWT, or OAuth client credentials; `domain="test"` for sandboxes) and hands simple-salesforce
the session id and its own `requests.Session`: timeouts, a retry adapter (idempotent methods
only, on 502-504 and dropped connections, honouring Retry-After; a POST is never retried), the
request budget, and call counts. Because the library gets a session id, it never logs in again
by itself: on 401 INVALID_SESSION_ID this connector logs in once and retries the call that
failed, so paging continues where it was.

Reads are incremental on SystemModstamp (cursor and raw records in the warehouse; deleted
records, read through queryAll, leave the store), by REST pages of 2,000 or by Bulk API 2.0
above a row threshold decided from a COUNT(). Writes are sObject Collections upserts on an
external id (200 a call, allOrNone=false), read first so that what is already right is not
written again; Tasks are created once per key (in the subject).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pandas as pd
import requests
from simple_salesforce import Salesforce, SalesforceLogin, format_soql
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceOperationError,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from revops.config import FieldMapping, field_mapping
from revops.connectors.page_log import PageLog
from revops.connectors.salesforce_lines import (
    contract_lines_from_records,
    line_objects,
    naming_records,
)
from revops.connectors.salesforce_mapping import FRAME_OF, records_frame
from revops.connectors.salesforce_session import CountingSession, make_session
from revops.connectors.salesforce_settings import (
    SalesforceConfig,
    SalesforceSettings,
    salesforce_config,
)
from revops.connectors.salesforce_store import STORE_FILE, SalesforceStore
from revops.connectors.salesforce_writes import SalesforceWrites
from revops.connectors.warehouse import Warehouse
from revops.errors import ConfigError, InputError, SourceError
from revops.frames import SourceLocation, validate_frame

# The connector's settings, session and store live in their own modules; importable from here.
__all__ = [
    "CountingSession",
    "SalesforceConfig",
    "SalesforceCrm",
    "SalesforceSettings",
    "SalesforceStore",
    "make_session",
    "salesforce_config",
]


class SalesforceCrm(SalesforceWrites):
    """CrmSource over the Salesforce APIs, plus idempotent write-back."""

    name = "salesforce"

    def __init__(
        self,
        settings: SalesforceSettings,
        config: SalesforceConfig,
        store: SalesforceStore,
        mapping: FieldMapping | None = None,
        full_refresh: bool = False,
    ) -> None:
        self.settings = settings
        self.config = config
        self.store = store
        self.mapping = mapping or field_mapping()
        self.full_refresh = full_refresh
        self.session = make_session(config, settings)
        self.mode = settings.mode()
        self.logins = 0
        self.sf = self._login()
        self._limits_checked = False
        self._frames: dict[str, pd.DataFrame] = {}

    @classmethod
    def from_settings(
        cls,
        warehouse: Warehouse,
        settings: SalesforceSettings | None = None,
        config: SalesforceConfig | None = None,
        full_refresh: bool = False,
    ) -> SalesforceCrm:
        """A connector with its own session, logged in with the configured credentials."""
        return cls(
            settings or SalesforceSettings(),
            config or salesforce_config(),
            SalesforceStore(warehouse),
            full_refresh=full_refresh,
        )

    @property
    def calls(self) -> dict[str, int]:
        """API calls made so far, per endpoint (logins included; adapter retries not)."""
        return dict(self.session.calls)

    # -- login ---------------------------------------------------------------------------------

    def _login(self) -> Salesforce:
        settings, version = self.settings, self.config.api_version
        self.logins += 1
        try:
            if self.mode == "session":
                assert settings.session_id is not None
                return Salesforce(
                    instance_url=settings.instance_url,
                    session_id=settings.session_id.get_secret_value(),
                    session=self.session,
                    version=version,
                )
            if self.mode == "client_credentials":
                session_id, instance = SalesforceLogin(
                    consumer_key=settings.consumer_key,
                    consumer_secret=settings.secret(settings.consumer_secret),
                    domain=settings.domain,
                    session=self.session,
                    sf_version=version,
                )
            elif self.mode == "jwt":
                session_id, instance = SalesforceLogin(
                    username=settings.username,
                    consumer_key=settings.consumer_key,
                    privatekey_file=settings.private_key_file,
                    domain=settings.domain,
                    session=self.session,
                    sf_version=version,
                )
            else:
                session_id, instance = SalesforceLogin(
                    username=settings.username,
                    password=settings.secret(settings.password),
                    security_token=settings.secret(settings.security_token)
                    if settings.security_token
                    else "",
                    domain=settings.domain,
                    session=self.session,
                    sf_version=version,
                )
            return Salesforce(
                instance=instance, session_id=session_id, session=self.session, version=version
            )
        except requests.RequestException as exc:
            raise SourceError(
                f"could not reach Salesforce to log in: {exc.__class__.__name__}", transient=True
            ) from None
        except SalesforceAuthenticationFailed as exc:
            raise SourceError(f"Salesforce refused the login ({settings.mode()}): {exc}") from None
        except SalesforceError as exc:
            raise SourceError(f"Salesforce refused the login: {_sf_message(exc)}") from None

    def _call(self, what: str, action: Callable[[Salesforce], Any]) -> Any:
        """One API call; a 401 logs in once and retries it; errors become clear SourceErrors."""
        for attempt in (1, 2):
            try:
                return action(self.sf)
            except SalesforceExpiredSession:
                if attempt == 1 and self.mode != "session":
                    self.sf = self._login()
                    continue
                if self.mode == "session":
                    raise SourceError(
                        f"the Salesforce session expired during {what}, and a session-id client "
                        "cannot log in again: give username/password or OAuth credentials"
                    ) from None
                raise SourceError(
                    f"the Salesforce session expired again right after a new login, during {what}"
                ) from None
            except SalesforceRefusedRequest as exc:
                if "REQUEST_LIMIT_EXCEEDED" in _sf_message(exc):
                    raise SourceError(
                        f"Salesforce's API request limit is exhausted (REQUEST_LIMIT_EXCEEDED) "
                        f"during {what}: stopping; not retried, the daily limit does not reset soon"
                    ) from None
                raise SourceError(f"Salesforce refused {what} (403): {_sf_message(exc)}") from None
            except SalesforceMoreThanOneRecord as exc:
                raise SourceError(
                    f"{what}: more than one record has that external id (300): {_sf_message(exc)}"
                ) from None
            except (SalesforceMalformedRequest, SalesforceResourceNotFound) as exc:
                raise SourceError(f"Salesforce refused {what}: {_sf_message(exc)}") from None
            except SalesforceError as exc:
                raise SourceError(
                    f"Salesforce failed on {what}: {_sf_message(exc)}", transient=exc.status >= 500
                ) from None
            except SalesforceOperationError as exc:
                # A Bulk API job that failed or timed out on Salesforce's side.
                raise SourceError(f"Salesforce failed {what}: {exc}", transient=True) from None
            except requests.RequestException as exc:
                raise SourceError(
                    f"could not reach Salesforce for {what} after retries: "
                    f"{exc.__class__.__name__}",
                    transient=True,
                ) from None
        raise AssertionError("unreachable")

    # -- CrmSource -----------------------------------------------------------------------------

    def accounts(self) -> pd.DataFrame:
        return self._frame("Account")

    def contracts(self) -> pd.DataFrame:
        return self._frame("Contract")

    def cases(self) -> pd.DataFrame:
        return self._frame("Case")

    def opportunities(self) -> pd.DataFrame:
        return self._frame("Opportunity")

    def users(self) -> pd.DataFrame:
        """Canonical `users` from User (who owns accounts, contracts, opportunities)."""
        return self._frame("User")

    def contract_lines(self) -> pd.DataFrame:
        """Canonical `contract_lines` from Order + OrderItem, or CPQ's SBQQ__Subscription__c
        (configs/fields.yaml `contract_lines`), read incrementally like the other objects."""
        if "contract_lines" not in self._frames:
            objects = line_objects(self.mapping)
            for sobject in objects:
                self._sync(sobject)
            records = {sobject: self.store.records(sobject) for sobject in objects}
            self._frames["contract_lines"] = contract_lines_from_records(
                records, self.mapping, STORE_FILE
            )
        return self._frames["contract_lines"]

    def refresh(self) -> None:
        """Forget the frames read so far: the next read syncs again (what changed since)."""
        self._frames.clear()

    def _frame(self, sobject: str) -> pd.DataFrame:
        if sobject not in self._frames:
            self._sync(sobject)
            records = self.store.records(sobject)
            try:
                frame = records_frame(sobject, records, self.mapping, file=STORE_FILE)
            except InputError as exc:
                raise naming_records(exc, sobject, records) from None
            columns = {c: s.field for c, s in self.mapping.for_object(sobject).items()}
            columns |= {
                f"{c}_minor": f for c, f in columns.items() if c in ("unit_price", "amount")
            }
            location = SourceLocation(file=STORE_FILE, columns=columns)
            self._frames[sobject] = validate_frame(FRAME_OF[sobject], frame, location)
        return self._frames[sobject]

    def check_limits(self) -> int:
        """Daily API requests left; stops cleanly when below the configured reserve."""
        limits = self._call("the limits check", lambda sf: sf.limits())
        remaining = int(limits.get("DailyApiRequests", {}).get("Remaining", 0))
        if remaining < self.config.daily_api_reserve:
            raise SourceError(
                f"only {remaining} Salesforce API requests are left today, below the reserve "
                f"of {self.config.daily_api_reserve} (configs/salesforce.yaml): stopping "
                "before reading"
            )
        return remaining

    def _fields(self, sobject: str) -> list[str]:
        described = self._call(
            f"describe {sobject}", lambda sf: sf.restful(f"sobjects/{sobject}/describe")
        )
        present = {f["name"] for f in described["fields"]}
        wanted = []
        for column, spec in self.mapping.for_object(sobject).items():
            if spec.field in present:
                wanted.append(spec.field)
            elif not spec.optional:
                raise ConfigError(
                    f"{sobject}.{spec.field} (for {column}) does not exist in this org: "
                    "fix configs/fields.yaml"
                )
        return ["Id", "SystemModstamp", "IsDeleted", *dict.fromkeys(w for w in wanted if w != "Id")]

    def _sync(self, sobject: str) -> None:
        if not self._limits_checked:
            self.check_limits()
            self._limits_checked = True
        fields = self._fields(sobject)
        cursor = None if self.full_refresh else self.store.cursor(sobject)
        soql = format_soql("SELECT {:literal} FROM {:literal}", ", ".join(fields), sobject)
        count = format_soql("SELECT COUNT() FROM {:literal}", sobject)
        if cursor is not None:
            since = cursor - timedelta(seconds=self.config.modstamp_overlap_seconds)
            where = format_soql(" WHERE SystemModstamp > {}", since)
            soql, count = soql + where, count + where
        # `query`, not `query_all`: query_all recounts the records it got, and COUNT() has none.
        total = self._call(f"count {sobject}", lambda sf: sf.query(count, include_deleted=True))[
            "totalSize"
        ]
        rows = (
            self._bulk(sobject, soql)
            if total > self.config.bulk_threshold_rows
            else self._pages(soql, what=f"the query of {sobject}")
        )
        kept: list[dict[str, Any]] = []
        deleted: list[str] = []
        for record in rows:
            record.pop("attributes", None)
            if str(record.get("IsDeleted")).lower() == "true":
                deleted.append(str(record["Id"]))
            else:
                kept.append(record)
        self.store.save(sobject, kept, deleted, replace_all=cursor is None)

    def _pages(
        self, soql: str, include_deleted: bool = True, what: str = "a query"
    ) -> Iterator[dict[str, Any]]:
        """REST query pages (2,000 records) by nextRecordsUrl (queryAll: with deleted ones)."""
        page = self._call(what, lambda sf: sf.query(soql, include_deleted=include_deleted))
        pages = PageLog("Salesforce", what)
        while True:
            pages.page(len(page["records"]), page.get("totalSize"))
            yield from page["records"]
            if page.get("done", True):
                pages.finish()
                return
            url = page["nextRecordsUrl"]
            page = self._call(
                "the next query page",
                lambda sf, u=url: sf.query_more(
                    u, identifier_is_url=True, include_deleted=include_deleted
                ),
            )

    def _bulk(self, sobject: str, soql: str) -> Iterator[dict[str, Any]]:
        """Bulk API 2.0 queryAll: CSV result pages by Sforce-Locator."""

        def run(sf: Salesforce) -> list[str]:
            return list(
                getattr(sf.bulk2, sobject).query_all(
                    soql, max_records=self.config.bulk_page_rows, wait=self.config.bulk_poll_seconds
                )
            )

        pages = PageLog("Salesforce", f"Bulk 2.0 query of {sobject}")
        for page in self._call(f"the Bulk 2.0 query of {sobject}", run):
            rows = list(csv.DictReader(io.StringIO(page)))
            pages.page(len(rows))
            yield from rows
        pages.finish()


def _sf_message(exc: SalesforceError) -> str:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return "; ".join(f"{c.get('errorCode', '')}: {c.get('message', '')}" for c in content)
    return str(content)[:300]
