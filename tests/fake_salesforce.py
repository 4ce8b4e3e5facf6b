"""A fake Salesforce org over real HTTPS on loopback, for the real simple-salesforce client.

TLS with a test CA (trustme): the connector is given the CA bundle (SALESFORCE_CA_BUNDLE),
nothing in the client is patched. It answers what the connector sends, in Salesforce's shapes:
OAuth client-credentials login; REST query and queryAll with `nextRecordsUrl` paging (2,000 a
page), COUNT(), and the WHERE forms the connector builds (SystemModstamp >, IN, LIKE ... OR);
describe; /limits; Bulk API 2.0 query jobs with CSV result pages (`Sforce-Locator`,
`Sforce-NumberOfRecords`); sObject Collections upsert, update and create with per-record
results. A request log and a fault queue (a status with body and headers, or an expired
session) serve the tests.
"""

from __future__ import annotations

import base64
import csv
import io
import itertools
import json
import re
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import trustme

API = "/services/data/v62.0/"
ID_PREFIX = {
    "Account": "001",
    "Contract": "800",
    "Case": "500",
    "Opportunity": "006",
    "Task": "00T",
    "Order": "801",
    "OrderItem": "802",
    "User": "005",
}
_ids = itertools.count(1)
# Standard fields of the objects the flows write (a real org has many more).
STANDARD_FIELDS = {
    "Account": {"Name", "OwnerId"},
    "Contract": {"AccountId", "Status", "StartDate", "EndDate", "OwnerId"},
    "Case": {"AccountId", "Subject", "Status", "Priority", "IsClosed", "CreatedDate", "OwnerId"},
    "Opportunity": {
        "Name",
        "AccountId",
        "ContractId",
        "Type",
        "StageName",
        "IsClosed",
        "CloseDate",
        "Amount",
        "CurrencyIsoCode",
        "OwnerId",
    },
    "Task": {"Subject", "WhatId", "OwnerId", "ActivityDate", "Priority", "Status", "Description"},
    # Salesforce's User (Object Reference: User; a few of its many standard fields).
    "User": {"Name", "FirstName", "LastName", "Username", "Email", "IsActive", "UserType"},
    # Salesforce's Order and OrderItem (Object Reference: Order, OrderItem; CurrencyIsoCode
    # only in multi-currency orgs, as here).
    "Order": {
        "AccountId",
        "ContractId",
        "Status",
        "StatusCode",
        "EffectiveDate",
        "EndDate",
        "CurrencyIsoCode",
        "OrderNumber",
        "Pricebook2Id",
        "Type",
        "OwnerId",
    },
    "OrderItem": {
        "OrderId",
        "Product2Id",
        "PricebookEntryId",
        "Quantity",
        "UnitPrice",
        "ListPrice",
        "TotalPrice",
        "ServiceDate",
        "EndDate",
        "OriginalOrderItemId",
        "CurrencyIsoCode",
        "Description",
    },
}
# The custom fields an org set up for RevOps Flows has (README: the write-back fields).
CUSTOM_FIELDS = {
    "Account": {"Health_Score__c", "Health_Tier__c", "Health_Reasons__c", "Health_Scored_On__c"},
    "Opportunity": {"RevOps_Key__c"},
    "OrderItem": {
        "Stripe_Price_Id__c",
        "Charge_Type__c",
        "Usage_Metric__c",
        "Included_Quantity__c",
        "Billing_Frequency__c",
    },
}
# The managed package's SBQQ__Subscription__c (CPQ Subscription Fields, Salesforce Help), in an
# org with CPQ installed: add it to `extra_fields` (plus the custom Stripe_Price_Id__c).
CPQ_SUBSCRIPTION_FIELDS = {
    "SBQQ__Contract__c",
    "SBQQ__Account__c",
    "SBQQ__Product__c",
    "SBQQ__Quantity__c",
    "SBQQ__NetPrice__c",
    "SBQQ__ListPrice__c",
    "SBQQ__CustomerPrice__c",
    "SBQQ__StartDate__c",
    "SBQQ__EndDate__c",
    "SBQQ__ChargeType__c",
    "SBQQ__BillingFrequency__c",
    "SBQQ__BillingType__c",
    "SBQQ__RevisedSubscription__c",
    "SBQQ__TerminatedDate__c",
    "CurrencyIsoCode",
    "Stripe_Price_Id__c",
}


def new_id(sobject: str) -> str:
    return f"{ID_PREFIX.get(sobject, 'a00')}FAKE{next(_ids):011d}"


def stamp(when: datetime | None = None) -> str:
    return (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


@dataclass
class Fault:
    """What to do to the next request whose path contains `path`."""

    path: str
    status: int = 503
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    expire_session: bool = False
    method: str | None = None
    # The org applies the request, then the connection drops before the answer: what a client
    # sees when a load balancer or the network cuts a write Salesforce has already committed.
    lose_answer: bool = False


@dataclass
class FakeOrg:
    """The org's records per sObject, its limits, the fault queue and the request log."""

    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    extra_fields: dict[str, set[str]] = field(default_factory=lambda: dict(CUSTOM_FIELDS))
    page_size: int = 2000
    remaining: int = 90_000
    faults: list[Fault] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=lambda: {"00DFAKE!session"})
    logins: int = 0
    fail_bulk: bool = False
    reject: Callable[[str, dict[str, Any]], dict[str, Any] | None] | None = None
    queries: list[str] = field(default_factory=list)
    consumer_key: str = "revops-app"
    consumer_secret: str = "consumer-secret"
    username: str = "revops@example.com"
    password: str = "hunter2TOKEN"
    jwt_public_key: bytes = b""
    url: str = ""
    ca_path: str = ""
    _cursors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _jobs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def domain(self) -> str:
        """A `domain` setting under which simple-salesforce's login URLs reach this server.

        simple-salesforce logs in at https://{domain}.salesforce.com/...; with this domain that
        is https://127.0.0.1:PORT/fake.salesforce.com/..., which the fake answers.
        """
        return f"{self.url.removeprefix('https://')}/fake"

    def fields(self, sobject: str) -> set[str]:
        """The fields `sobject` has in this org: standard, custom (extra_fields) and any a
        stored record carries."""
        names = {"Id", "IsDeleted", "SystemModstamp"} | STANDARD_FIELDS.get(sobject, set())
        names |= self.extra_fields.get(sobject, set())
        for record in self.records.get(sobject, []):
            names |= set(record)
        return names

    def has(self, sobject: str) -> bool:
        """Whether the org has `sobject` at all (standard, set up, or holding records)."""
        return any(sobject in known for known in (STANDARD_FIELDS, self.extra_fields, self.records))

    def calls(self, method: str, fragment: str) -> int:
        """How many logged requests of `method` had `fragment` in their path."""
        return sum(1 for m, p in self.log if m == method and fragment in p)

    def add(self, sobject: str, **values: Any) -> dict[str, Any]:
        record = {"Id": new_id(sobject), "IsDeleted": False, "SystemModstamp": stamp()}
        record.update(_stored(sobject, values))
        self.records.setdefault(sobject, []).append(record)
        return record


class _Refused(Exception):
    """An error answer for the whole request, raised from deep in a route."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


class _Handler(BaseHTTPRequestHandler):
    org: FakeOrg
    _lose_answer = False

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    # -- plumbing ----------------------------------------------------------------------------

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.org.log.append((method, path))
        for fault in list(self.org.faults):
            if fault.path in path and (fault.method is None or fault.method == method):
                self.org.faults.remove(fault)
                if fault.expire_session:
                    self.org.tokens.clear()
                    break
                if fault.lose_answer:
                    self._lose_answer = True
                    self.close_connection = True
                    break
                if isinstance(fault.body, str):  # an HTML error page, as Salesforce's edge sends
                    headers = {"Content-Type": "text/html", **fault.headers}
                    return self._send(fault.status, None, headers, text=fault.body)
                return self._send(fault.status, fault.body, dict(fault.headers))
        if path.endswith("/services/oauth2/token") and method == "POST":
            return self._token(parse_qs(raw.decode()))
        if re.search(r"/services/Soap/u/[\d.]+$", path) and method == "POST":
            return self._soap_login(raw.decode())
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        if token not in self.org.tokens:
            return self._send(
                401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
            )
        if not path.startswith(API):
            return self._send(404, [{"message": "not found", "errorCode": "NOT_FOUND"}])
        route = path[len(API) :].rstrip("/")
        try:
            self._route(method, route, query, json.loads(raw) if raw else None)
        except _Refused as refused:
            self._send(refused.status, refused.body)

    def _send(
        self, status: int, body: Any, headers: dict[str, str] | None = None, text: str | None = None
    ) -> None:
        if self._lose_answer:
            self._lose_answer = False
            return
        if text is None:
            payload = json.dumps(body).encode()
            content_type = "application/json;charset=UTF-8"
        else:
            payload = text.encode()
            content_type = (headers or {}).pop("Content-Type", "text/csv")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _token(self, form: dict[str, list[str]]) -> None:
        """OAuth: client credentials (Basic auth, as simple-salesforce sends it) or JWT bearer."""
        grant = form.get("grant_type", [""])[0]
        if grant == "client_credentials":
            basic = (self.headers.get("Authorization") or "").removeprefix("Basic ").strip()
            key, _, secret = (
                base64.b64decode(basic).decode().partition(":") if basic else ("", "", "")
            )
            if (key, secret) != (self.org.consumer_key, self.org.consumer_secret):
                return self._send(
                    400,
                    {"error": "invalid_client", "error_description": "invalid client credentials"},
                )
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            claims = jwt.decode(
                form["assertion"][0],
                self.org.jwt_public_key,
                algorithms=["RS256"],
                options={"verify_aud": False},
            )
            if claims.get("iss") != self.org.consumer_key or claims.get("sub") != self.org.username:
                return self._send(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "user hasn't approved this consumer",
                    },
                )
        else:
            return self._send(400, {"error": "unsupported_grant_type", "error_description": grant})
        self._send(
            200,
            {
                "access_token": self._new_token(),
                "instance_url": self.org.url,
                "token_type": "Bearer",
            },
        )

    def _soap_login(self, body: str) -> None:
        """The SOAP partner login simple-salesforce uses for username + password (+ token)."""
        username = re.search(r"<n1:username>(.*?)</n1:username>", body)
        password = re.search(r"<n1:password>(.*?)</n1:password>", body)
        if (
            not username
            or not password
            or (username.group(1), password.group(1))
            != (
                self.org.username,
                self.org.password,
            )
        ):
            fault = (
                '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
                'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
                "<faultcode>sf:INVALID_LOGIN</faultcode><detail><sf:LoginFault>"
                "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:exceptionMessage>Invalid "
                "username, password, security token; or user locked out.</sf:exceptionMessage>"
                "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
            )
            return self._send(500, None, {"Content-Type": "text/xml"}, text=fault)
        answer = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
            f"<serverUrl>{self.org.url}/services/Soap/u/62.0/00DFAKE</serverUrl>"
            f"<sessionId>{self._new_token()}</sessionId></result></loginResponse>"
            "</soapenv:Body></soapenv:Envelope>"
        )
        self._send(200, None, {"Content-Type": "text/xml"}, text=answer)

    def _new_token(self) -> str:
        self.org.logins += 1
        token = f"00DFAKE!token{self.org.logins}"
        self.org.tokens.add(token)
        return token

    # -- API ---------------------------------------------------------------------------------

    def _route(self, method: str, route: str, query: dict[str, list[str]], body: Any) -> None:
        if method == "GET" and route in ("query", "queryAll"):
            return self._send(200, self._query(query["q"][0], include_deleted=route == "queryAll"))
        if method == "GET" and route.startswith("query/"):
            cursor, offset = route.split("/", 1)[1].rsplit("-", 1)
            return self._send(200, self._page(cursor, int(offset)))
        if method == "GET" and route == "limits":
            return self._send(
                200, {"DailyApiRequests": {"Max": 100_000, "Remaining": self.org.remaining}}
            )
        if method == "GET" and route.startswith("sobjects/") and route.endswith("/describe"):
            sobject = route.split("/")[1]
            if not self.org.has(sobject):
                # What Salesforce answers for an object the org lacks (no CPQ package, say).
                return self._send(
                    404,
                    [
                        {
                            "message": "The requested resource does not exist",
                            "errorCode": "NOT_FOUND",
                        }
                    ],
                )
            names = sorted(self.org.fields(sobject))
            return self._send(200, {"name": sobject, "fields": [{"name": n} for n in names]})
        if route == "jobs/query" and method == "POST":
            return self._create_job(body)
        if route.startswith("jobs/query/"):
            return self._job(route.split("/")[2:], query)
        if route.startswith("composite/sobjects"):
            return self._collections(method, route.split("/")[2:], body)
        self._send(404, [{"message": f"no route {method} {route}", "errorCode": "NOT_FOUND"}])

    def _rows(
        self, soql: str, include_deleted: bool
    ) -> tuple[list[str], str, list[dict[str, Any]]]:
        match = re.match(r"SELECT (.+?) FROM (\w+)(?: WHERE (.+))?$", soql.strip(), re.S)
        assert match, soql
        fields = [f.strip() for f in match.group(1).split(",")]
        sobject, where = match.group(2), match.group(3)
        self._check_fields(sobject, [f for f in fields if f != "COUNT()"])
        rows = [
            r
            for r in self.org.records.get(sobject, [])
            if include_deleted or not r.get("IsDeleted")
        ]
        return fields, sobject, [r for r in rows if _where(where, r)]

    def _query(self, soql: str, include_deleted: bool) -> dict[str, Any]:
        self.org.queries.append(soql)
        fields, sobject, rows = self._rows(soql, include_deleted)
        if fields == ["COUNT()"]:
            return {"totalSize": len(rows), "done": True, "records": []}
        shaped = [
            {
                "attributes": {"type": sobject, "url": f"{API}sobjects/{sobject}/{r['Id']}"},
                **{f: r.get(f) for f in fields},
            }
            for r in rows
        ]
        cursor = f"01gFAKE{next(_ids)}"
        self.org._cursors[cursor] = shaped
        return self._page(cursor, 0)

    def _page(self, cursor: str, offset: int) -> dict[str, Any]:
        rows = self.org._cursors[cursor]
        page = rows[offset : offset + self.org.page_size]
        done = offset + len(page) >= len(rows)
        out: dict[str, Any] = {"totalSize": len(rows), "done": done, "records": page}
        if not done:
            out["nextRecordsUrl"] = f"{API}query/{cursor}-{offset + self.org.page_size}"
        return out

    def _create_job(self, body: dict[str, Any]) -> None:
        job_id = f"750FAKE{next(_ids)}"
        self.org.queries.append(body["query"])
        fields, sobject, rows = self._rows(body["query"], body.get("operation") == "queryAll")
        self.org._jobs[job_id] = {"fields": fields, "rows": rows}
        self._send(
            200,
            {
                "id": job_id,
                "operation": body.get("operation"),
                "object": sobject,
                "state": "UploadComplete",
                "contentType": "CSV",
            },
        )

    def _job(self, parts: list[str], query: dict[str, list[str]]) -> None:
        job = self.org._jobs[parts[0]]
        if len(parts) == 1:
            state = "Failed" if self.org.fail_bulk else "JobComplete"
            body = {"id": parts[0], "state": state, "numberRecordsProcessed": len(job["rows"])}
            if self.org.fail_bulk:
                body["errorMessage"] = "InvalidBatch : Failed to process query: QUERY_TIMEOUT"
            return self._send(200, body)
        size = int(query.get("maxRecords", ["50000"])[0])
        offset = int(query.get("locator", ["0"])[0] or 0)
        page = job["rows"][offset : offset + size]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(job["fields"])
        for row in page:
            writer.writerow([_csv_value(row.get(f)) for f in job["fields"]])
        following = offset + size
        locator = str(following) if following < len(job["rows"]) else "null"
        self._send(
            200,
            None,
            {"Sforce-Locator": locator, "Sforce-NumberOfRecords": str(len(page))},
            text=buffer.getvalue(),
        )

    def _check_fields(self, sobject: str, names: list[str]) -> None:
        """Salesforce's INVALID_FIELD answer (400) for the first field `sobject` lacks."""
        known = self.org.fields(sobject)
        for name in names:
            if name not in known:
                message = (
                    f"No such column '{name}' on entity '{sobject}'. If you are attempting to "
                    "use a custom field, be sure to append the '__c' after the custom field name."
                )
                raise _Refused(400, [{"errorCode": "INVALID_FIELD", "message": message}])

    def _collections(self, method: str, parts: list[str], body: dict[str, Any]) -> None:
        # An unknown field fails the whole request (the JSON cannot be read), not one record.
        names: dict[str, set[str]] = {}
        for record in body["records"]:
            names.setdefault(record["attributes"]["type"], set()).update(record)
        for sobject, written in names.items():
            self._check_fields(sobject, sorted(written - {"attributes"}))
        answers = []
        key_field = parts[1] if len(parts) == 2 else "Id"
        wanted = {r.get(key_field) for r in body["records"]}
        by_key: dict[Any, list[dict[str, Any]]] = {}
        for stored_record in self.org.records.get(body["records"][0]["attributes"]["type"], []):
            value = stored_record.get(key_field)
            if value in wanted and not stored_record.get("IsDeleted"):
                by_key.setdefault(value, []).append(stored_record)
        for record in body["records"]:
            sobject = record["attributes"]["type"]
            values = {k: v for k, v in record.items() if k != "attributes"}
            rejected = self.org.reject(sobject, values) if self.org.reject else None
            if rejected:
                answers.append({"id": None, "success": False, "errors": [rejected]})
                continue
            if method == "POST":
                answers.append(
                    {
                        "id": self.org.add(sobject, **values)["Id"],
                        "success": True,
                        "errors": [],
                        "created": True,
                    }
                )
                continue
            matches = by_key.get(values.get(key_field), [])
            if len(matches) > 1:
                answers.append(
                    {
                        "id": None,
                        "success": False,
                        "errors": [
                            {
                                "statusCode": "DUPLICATE_EXTERNAL_ID",
                                "fields": [key_field],
                                "message": f"{key_field}: more than one record has this id",
                            }
                        ],
                    }
                )
            elif matches:
                matches[0].update(_stored(sobject, values), SystemModstamp=stamp())
                answers.append(
                    {"id": matches[0]["Id"], "success": True, "errors": [], "created": False}
                )
            elif key_field == "Id":
                answers.append(
                    {
                        "id": None,
                        "success": False,
                        "errors": [
                            {
                                "statusCode": "ENTITY_IS_DELETED",
                                "message": "entity is deleted",
                                "fields": [],
                            }
                        ],
                    }
                )
            else:
                answers.append(
                    {
                        "id": self.org.add(sobject, **values)["Id"],
                        "success": True,
                        "errors": [],
                        "created": True,
                    }
                )
        self._send(200, answers)


def _stored(sobject: str, values: dict[str, Any]) -> dict[str, Any]:
    """Values as Salesforce keeps them: numbers as numbers, an Opportunity's IsClosed from its
    stage (a formula of the stage in a real org)."""
    out = {
        k: float(v) if k in _NUMBERS and isinstance(v, str) and v else v for k, v in values.items()
    }
    if sobject == "Opportunity" and "StageName" in out:
        out["IsClosed"] = str(out["StageName"]).startswith("Closed")
    return out


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _soql_text(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal)


def _where(where: str | None, record: dict[str, Any]) -> bool:
    return _matcher(where)(record) if where else True


@lru_cache(maxsize=64)
def _matcher(where: str) -> Callable[[dict[str, Any]], bool]:
    """The WHERE forms the connector builds, parsed once per query."""
    if " LIKE " in where:
        terms = [
            (term.group(1), _soql_text(term.group(2).strip("%")))
            for term in re.finditer(r"(\w+) LIKE '((?:[^'\\]|\\.)*)'", where)
        ]
        return lambda r: any(needle in str(r.get(name) or "") for name, needle in terms)
    found = re.match(r"(\w+) IN \((.*)\)$", where, re.S)
    if found:
        name = found.group(1)
        values = {_soql_text(v) for v in re.findall(r"'((?:[^'\\]|\\.)*)'", found.group(2))}
        return lambda r: str(r.get(name)) in values
    found = re.match(r"SystemModstamp > (\S+)$", where)
    if found:
        since = datetime.fromisoformat(found.group(1).replace("Z", "+00:00"))
        return lambda r: _stamp(r.get("SystemModstamp")) > since
    raise AssertionError(f"the fake org does not evaluate: {where}")


def _stamp(value: Any) -> datetime:
    text = str(value).replace("Z", "+00:00")
    if text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    return datetime.fromisoformat(text)


@contextmanager
def fake_org(tmp_dir: Path, org: FakeOrg | None = None) -> Iterator[FakeOrg]:
    """Serve `org` over HTTPS on a free loopback port, with a test CA written to `tmp_dir`."""
    org = org or FakeOrg()
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_path = tmp_dir / "fake-salesforce-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    handler = type("Handler", (_Handler,), {"org": org})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    org.url = f"https://127.0.0.1:{server.server_address[1]}"
    org.ca_path = str(ca_path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield org
    finally:
        server.shutdown()
        server.server_close()


# Field types as the REST API returns them in JSON (numbers and booleans, not text).
_NUMBERS = {
    "Unit_Price__c",
    "Quantity__c",
    "Discount_Percent__c",
    "Amount",
    "Quantity",
    "UnitPrice",
    "Included_Quantity__c",
    "SBQQ__Quantity__c",
    "SBQQ__NetPrice__c",
}
_BOOLEANS = {"Auto_Renew__c", "IsClosed", "IsActive"}


def seed_from_frame(org: FakeOrg, sobject: str, frame: Any, when: datetime | None = None) -> None:
    """Store a canonical frame's rows as `sobject` records with REST-typed values.

    The rows go through the Data Loader writer (connectors/files_export.py), so field names
    and values are those of configs/fields.yaml; each keeps its canonical id as `Id`.
    """
    from revops.config import field_mapping
    from revops.connectors.files_export import crm_csv

    seed_from_csv(org, sobject, crm_csv(sobject, frame, field_mapping()), when)


def seed_lines(org: FakeOrg, contract_lines: Any, contracts: Any) -> None:
    """Store contract lines as the Order and OrderItem records files_export writes for them."""
    from revops.config import field_mapping
    from revops.connectors.files_export import order_csvs

    for name, text in order_csvs(contract_lines, contracts, field_mapping()).items():
        seed_from_csv(org, name.removesuffix(".csv"), text)


def seed_from_csv(org: FakeOrg, sobject: str, text: str, when: datetime | None = None) -> None:
    """Store a Data Loader CSV's rows as `sobject` records with REST-typed values."""
    for row in csv.DictReader(io.StringIO(text)):
        record: dict[str, Any] = {"IsDeleted": False, "SystemModstamp": stamp(when)}
        for name, value in row.items():
            if value == "":
                record[name] = None
            elif name in _NUMBERS:
                record[name] = float(value)
            elif name in _BOOLEANS:
                record[name] = value == "true"
            else:
                record[name] = value
        org.records.setdefault(sobject, []).append(record)
