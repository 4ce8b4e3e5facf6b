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
import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import requests
import sqlalchemy as sa
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from requests.adapters import HTTPAdapter
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
from urllib3.util.retry import Retry

from revops.config import FieldMapping, StrictConfig, field_mapping, load_config
from revops.connectors.rate_limits import Limiter, limiter_for
from revops.connectors.salesforce_mapping import FRAME_OF, records_frame, same_field_value
from revops.connectors.warehouse import Warehouse, metadata, read_cursor, write_cursor
from revops.errors import ConfigError, InputError, InputErrors, SourceError
from revops.frames import SourceLocation, validate_frame

salesforce_records = sa.Table(
    "salesforce_records",
    metadata,
    sa.Column("sobject", sa.String(64), primary_key=True),
    sa.Column("record_id", sa.String(18), primary_key=True),
    sa.Column("modstamp", sa.String(40), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
)
STORE_FILE = "Salesforce records (warehouse table salesforce_records)"
TASK_SUBJECT_LENGTH = 255


class SalesforceConfig(StrictConfig):
    """configs/salesforce.yaml."""

    api_version: str = "62.0"
    timeout_seconds: float = Field(default=30, gt=0)
    max_retries: int = Field(default=4, ge=0, le=10)
    backoff_seconds: float = Field(default=1.0, ge=0)
    bulk_threshold_rows: int = Field(default=50_000, ge=1)
    bulk_page_rows: int = Field(default=50_000, ge=1)
    bulk_poll_seconds: float = Field(default=5, ge=0)
    daily_api_reserve: int = Field(default=5_000, ge=0)
    modstamp_overlap_seconds: int = Field(default=300, ge=0)
    requests_per_second: float = Field(default=10, gt=0)
    prefect_rate_limit: str | None = None
    external_id_field: str = "RevOps_Key__c"
    batch_size: int = Field(default=200, ge=1, le=200)


@lru_cache(maxsize=4)
def salesforce_config(directory: Path | None = None) -> SalesforceConfig:
    """configs/salesforce.yaml, validated."""
    return load_config(SalesforceConfig, "salesforce.yaml", directory)


class SalesforceSettings(BaseSettings):
    """Credentials (SALESFORCE_*), read inside the run; secrets never logged."""

    model_config = SettingsConfigDict(env_prefix="SALESFORCE_", env_file=".env", extra="ignore")

    instance_url: str | None = None
    session_id: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    domain: str = Field(
        default="login",
        description="login, test (sandboxes) or the My Domain before .salesforce.com (acme.my).",
    )
    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None
    private_key_file: str | None = None
    secret_block: str | None = Field(
        default=None,
        description="Prefect Secret block holding the password or consumer secret (a string).",
    )
    ca_bundle: str | None = Field(default=None, description="CA bundle to verify the org with.")
    prefect_rate_limit: str | None = None

    def mode(self) -> str:
        """How to log in: client_credentials, jwt, password or session."""
        my_domain = self.domain not in ("login", "test")
        if self.consumer_key and (self.consumer_secret or self.secret_block) and my_domain:
            return "client_credentials"
        if self.consumer_key and self.private_key_file and self.username:
            return "jwt"
        if self.username and (self.password or self.secret_block):
            return "password"
        if self.session_id and self.instance_url:
            return "session"
        raise ConfigError(
            "the Salesforce source needs SALESFORCE_INSTANCE_URL + SALESFORCE_SESSION_ID, "
            "SALESFORCE_USERNAME + PASSWORD (+ SECURITY_TOKEN), SALESFORCE_CONSUMER_KEY + "
            "PRIVATE_KEY_FILE + USERNAME (JWT), or SALESFORCE_CONSUMER_KEY + CONSUMER_SECRET + "
            "DOMAIN (client credentials, on the org's My Domain, e.g. acme.my)"
        )

    def secret(self, value: SecretStr | None) -> str:
        if value is not None:
            return value.get_secret_value()
        if self.secret_block:
            from prefect.blocks.system import Secret

            found = Secret.load(self.secret_block).get()
            if isinstance(found, str):
                return found
            raise ConfigError(f"Prefect Secret block {self.secret_block!r} must hold a string")
        return ""


class _Session(requests.Session):
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
        self.calls[_endpoint(str(method), str(url))] += 1
        return super().request(method, url, *args, **kwargs)


def _endpoint(method: str, url: str) -> str:
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


def make_session(config: SalesforceConfig, settings: SalesforceSettings) -> _Session:
    """Our session: timeouts, idempotent retries with Retry-After, budget, counts."""
    shared = settings.prefect_rate_limit or config.prefect_rate_limit
    session = _Session(config.timeout_seconds, limiter_for(config.requests_per_second, shared))
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


class SalesforceStore:
    """Raw records of each sObject and their SystemModstamp cursors, in the warehouse."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        # The warehouse may have been opened before this module defined the table.
        salesforce_records.create(warehouse.engine, checkfirst=True)

    def cursor(self, sobject: str) -> datetime | None:
        """The newest SystemModstamp stored for `sobject`; None before the first read."""
        value = read_cursor(self.warehouse.engine, "salesforce", sobject)
        return None if value is None else datetime.fromtimestamp(value, UTC)

    def save(
        self, sobject: str, records: list[dict[str, Any]], deleted: list[str], replace_all: bool
    ) -> None:
        """Upsert records, drop deleted ones, move the cursor; one transaction."""
        now = datetime.now(UTC)
        table = salesforce_records
        with self.warehouse.transaction(serialise_on=f"salesforce_records:{sobject}") as conn:
            if replace_all:
                conn.execute(table.delete().where(table.c.sobject == sobject))
            gone = list(deleted) + ([] if replace_all else [r["Id"] for r in records])
            for start in range(0, len(gone), 500):
                conn.execute(
                    table.delete().where(
                        (table.c.sobject == sobject)
                        & table.c.record_id.in_(gone[start : start + 500])
                    )
                )
            rows = [
                {
                    "sobject": sobject,
                    "record_id": r["Id"],
                    "modstamp": str(r.get("SystemModstamp") or ""),
                    "payload": json.dumps(r, default=str),
                    "synced_at": now,
                }
                for r in records
            ]
            for start in range(0, len(rows), 2_000):
                conn.execute(table.insert(), rows[start : start + 2_000])
            # REST writes +0000, Bulk CSV Z: both ISO 8601.
            stamps = pd.Series([r.get("SystemModstamp") for r in records], dtype=object)
            newest = pd.to_datetime(stamps, format="ISO8601", utc=True, errors="coerce").max()
            if pd.notna(newest) or replace_all:
                cursor = None if pd.isna(newest) else int(newest.timestamp())
                write_cursor(conn, "salesforce", sobject, cursor)

    def records(self, sobject: str) -> list[dict[str, Any]]:
        query = (
            sa.select(salesforce_records.c.payload)
            .where(salesforce_records.c.sobject == sobject)
            .order_by(salesforce_records.c.record_id)
        )
        with self.warehouse.engine.connect() as conn:
            return [json.loads(p) for p in conn.execute(query).scalars()]


class SalesforceCrm:
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
                raise _naming_records(exc, sobject, records) from None
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
        while True:
            yield from page["records"]
            if page.get("done", True):
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

        for page in self._call(f"the Bulk 2.0 query of {sobject}", run):
            yield from csv.DictReader(io.StringIO(page))

    # -- writes --------------------------------------------------------------------------------

    def upsert(
        self,
        sobject: str,
        records: list[dict[str, Any]],
        external_id_field: str | None = None,
        dry_run: bool = False,
    ) -> pd.DataFrame:
        """Create or update `records` by an external id (or Id), writing only what differs.

        Returns one row per record: key, action (created | updated | unchanged | failed, or
        create | update | unchanged on a dry run), id, changed_fields, error.
        """
        field = external_id_field or self.config.external_id_field
        keys = [str(r[field]) for r in records]
        fields = sorted({k for r in records for k in r if k != field and not k.startswith("_")})
        existing = self._existing(sobject, field, keys, fields)
        plan = []
        for record, key in zip(records, keys, strict=True):
            current = existing.get(key)
            changed = [
                f
                for f in fields
                if f in record and not same_field_value(record[f], (current or {}).get(f))
            ]
            action = "create" if current is None else ("update" if changed else "unchanged")
            if field == "Id" and current is None:
                action = "missing"
            plan.append(
                {
                    "key": key,
                    "action": action,
                    "id": (current or {}).get("Id"),
                    "changed_fields": ";".join(changed) if current else "",
                    "error": "",
                }
            )
        columns = ["key", "action", "id", "changed_fields", "error"]
        if dry_run or not plan:
            return pd.DataFrame(plan, columns=columns)
        for row in plan:
            if row["action"] == "missing":
                row.update(action="failed", error=f"no {sobject} with Id {row['key']}")
        path = "composite/sobjects" if field == "Id" else f"composite/sobjects/{sobject}/{field}"
        todo = {
            i: records[i] for i, row in enumerate(plan) if row["action"] in ("create", "update")
        }
        self._send(f"the {sobject} upsert", "PATCH", path, sobject, todo, plan)
        return pd.DataFrame(plan, columns=columns)

    def _send(
        self,
        what: str,
        method: str,
        path: str,
        sobject: str,
        todo: dict[int, dict[str, Any]],
        plan: list[dict[str, Any]],
    ) -> None:
        """sObject Collections calls of `batch_size` records, allOrNone=false; each answer goes
        to its row of `plan` (created | updated, or failed with Salesforce's errors)."""
        items = list(todo.items())
        for start in range(0, len(items), self.config.batch_size):
            chunk = items[start : start + self.config.batch_size]
            body = {
                "allOrNone": False,
                "records": [
                    {
                        "attributes": {"type": sobject},
                        **{k: v for k, v in record.items() if not k.startswith("_")},
                    }
                    for _, record in chunk
                ],
            }
            answers = self._call(
                what,
                lambda sf, b=body: sf.restful(path, method=method, data=json.dumps(b, default=str)),
            )
            for (i, _), answer in zip(chunk, answers, strict=True):
                if answer.get("success"):
                    created = answer.get("created", plan[i]["action"] == "create")
                    plan[i].update(action="created" if created else "updated", id=answer.get("id"))
                else:
                    plan[i].update(action="failed", error=_record_errors(answer))

    def _existing(
        self, sobject: str, field: str, keys: list[str], fields: list[str]
    ) -> dict[str, dict]:
        found: dict[str, dict] = {}
        select = ", ".join(dict.fromkeys(["Id", field, *fields]))
        for start in range(0, len(keys), self.config.batch_size):
            chunk = keys[start : start + self.config.batch_size]
            soql = format_soql(
                "SELECT {:literal} FROM {:literal} WHERE {:literal} IN {}",
                select,
                sobject,
                field,
                chunk,
            )
            reading = f"reading the {sobject} records to write (by {field})"
            for record in self._pages(soql, include_deleted=False, what=reading):
                found[str(record[field])] = record
        return found

    def create_tasks(self, records: list[dict[str, Any]], dry_run: bool = False) -> pd.DataFrame:
        """Create each Task unless one with its key already exists.

        The key (`_key`) goes in the subject as "[key]" so it can be searched for (a Task's
        description cannot be filtered in SOQL). Returns key, action (created | unchanged |
        failed, or create on a dry run), id, error.
        """
        rows = []
        for record in records:
            key = record["_key"]
            subject = record.get("Subject", "")
            if f"[{key}]" not in subject:
                # Task.Subject holds 255 characters: shorten the text, never the key.
                text = subject[: TASK_SUBJECT_LENGTH - len(key) - 3].rstrip()
                subject = f"{text} [{key}]".strip()
            rows.append((key, record | {"Subject": subject}))  # _send drops the `_` keys
        existing: dict[str, str] = {}
        for start in range(0, len(rows), 50):
            keys = [key for key, _ in rows[start : start + 50]]
            condition = " OR ".join(format_soql("Subject LIKE '%{:like}%'", f"[{k}]") for k in keys)
            soql = f"SELECT Id, Subject FROM Task WHERE {condition}"
            for found in self._pages(soql, include_deleted=False, what="looking up Task keys"):
                for key in keys:
                    if f"[{key}]" in (found.get("Subject") or ""):
                        existing[key] = found["Id"]
        plan = [
            {
                "key": k,
                "action": "unchanged" if k in existing else "create",
                "id": existing.get(k),
                "error": "",
            }
            for k, _ in rows
        ]
        columns = ["key", "action", "id", "error"]
        if dry_run:
            return pd.DataFrame(plan, columns=columns)
        todo = {i: record for i, (k, record) in enumerate(rows) if k not in existing}
        self._send("the Task create", "POST", "composite/sobjects", "Task", todo, plan)
        return pd.DataFrame(plan, columns=columns)


def _naming_records(exc: InputError, sobject: str, records: list[dict[str, Any]]) -> InputError:
    """The same error with each bad row named by its Salesforce record (what a user can open)."""
    errors = exc.errors if isinstance(exc, InputErrors) else [exc]
    named = [
        InputError(
            e.reason
            + (
                f" ({sobject} {records[e.row - 1].get('Id')})"
                if e.row is not None and 0 < e.row <= len(records)
                else ""
            ),
            file=e.file,
            row=e.row,
            column=e.column,
        )
        for e in errors
    ]
    return named[0] if len(named) == 1 else InputErrors(named)


def _record_errors(answer: dict[str, Any]) -> str:
    """'REQUIRED_FIELD_MISSING: Required fields are missing (StageName)'; all errors joined."""
    return "; ".join(
        f"{e.get('statusCode', 'ERROR')}: {e.get('message', '')}"
        + (f" ({', '.join(e['fields'])})" if e.get("fields") else "")
        for e in answer.get("errors", [])
    )


def _sf_message(exc: SalesforceError) -> str:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return "; ".join(f"{c.get('errorCode', '')}: {c.get('message', '')}" for c in content)
    return str(content)[:300]
