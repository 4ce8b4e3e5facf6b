"""The live Stripe connector over real HTTP: localstripe for the read and write paths, the fake
Stripe server (tests/fake_stripe.py) for what localstripe lacks and for injected faults."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import stripe
from pydantic import SecretStr

from revops.connectors.demo_credits import CREDIT_KINDS
from revops.connectors.stripe_billing import StripeBilling, StripeSettings, stripe_config
from revops.connectors.warehouse import Warehouse
from revops.errors import ConfigError, RateLimited, SourceError
from revops.periods import parse_period
from revops.tasks.reconciliation import ReconciliationInput, reconcile
from revops.tasks.reconciliation_config import reconciliation_config
from tests.builders import account, contract, frame
from tests.fake_stripe import Fault, fake_stripe, invoice
from tests.local_servers import localstripe as run_localstripe

pytestmark = [pytest.mark.prefect, pytest.mark.servers]

BIN = Path(sys.executable).parent
DAY = 86_400


@pytest.fixture(scope="module")
def localstripe() -> Iterator[str]:
    """A fresh localstripe for this module (tests/local_servers.py)."""
    with run_localstripe() as url:
        yield url


def connector(
    url: str, warehouse_url: str, sleeps: list[float] | None = None, **config: object
) -> StripeBilling:
    settings = StripeSettings(api_key=SecretStr("sk_test_revops"), api_base=url)
    return StripeBilling.from_settings(
        Warehouse(warehouse_url),
        settings=settings,
        config=stripe_config().model_copy(update={"backoff_seconds": 0.5, **config}),
        sleep=(sleeps.append if sleeps is not None else lambda _s: None),
    )


def seed(client: stripe.StripeClient, customer: dict, seats: int, plan: str) -> tuple[str, str]:
    token = client.v1.tokens.create(
        {"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}}
    )
    created = client.v1.customers.create({**customer, "source": token.id})
    subscription = client.v1.subscriptions.create(
        {"customer": created.id, "items": [{"plan": plan, "quantity": seats}]}
    )
    return created.id, subscription.id


@pytest.fixture(scope="module")
def seeded(localstripe: str) -> dict[str, tuple[str, str]]:
    """Three customers on localstripe through the real client: two with contracts, one without."""
    client = stripe.StripeClient(
        "sk_test_revops", base_addresses={"api": localstripe}, max_network_retries=0
    )
    product = client.v1.products.create({"name": "Seat"})
    client.v1.plans.create(
        {
            "id": "plan_seat_usd",
            "amount": 10_000,
            "currency": "usd",
            "interval": "month",
            "product": product.id,
        }
    )
    client.v1.plans.create(
        {
            "id": "plan_seat_usd_2027",
            "amount": 11_000,
            "currency": "usd",
            "interval": "month",
            "product": product.id,
        }
    )
    return {
        "metadata_linked": seed(
            client,
            {"email": "a@acme.test", "metadata": {"salesforce_account_id": "001A"}},
            10,
            "plan_seat_usd",
        ),
        "crm_linked": seed(client, {"email": "b@globex.test"}, 12, "plan_seat_usd"),
        "no_contract": seed(client, {"email": "c@initech.test"}, 5, "plan_seat_usd"),
    }


def test_read_back_and_reconcile_against_contracts(
    localstripe: str, seeded: dict, sqlite_url: str
) -> None:
    billing = connector(localstripe, sqlite_url)
    invoices, lines = billing.invoices()
    customers = billing.customers()
    assert set(customers["customer_id"]) >= {c for c, _ in seeded.values()}
    assert (lines["unit_amount_minor"] == 10_000).all()
    today = datetime.now(UTC).date()
    (_, sub_a), (cus_b, sub_b) = seeded["metadata_linked"], seeded["crm_linked"]
    start = lines["period_start"].min().tz_convert("UTC").strftime("%Y-%m-%d")
    data = ReconciliationInput(
        accounts=frame("accounts", [account("001A"), account("001B", stripe_customer_id=cus_b)]),
        contracts=frame(
            "contracts",
            [
                contract(
                    "800A",
                    "001A",
                    stripe_subscription_id=sub_a,
                    start_date=start,
                    end_date="2099-12-31",
                ),
                contract(
                    "800B",
                    "001B",
                    stripe_subscription_id=sub_b,
                    start_date=start,
                    end_date="2099-12-31",
                ),
            ],
        ),
        customers=customers,
        invoices=invoices,
        invoice_lines=lines,
    )
    result = reconcile(data, parse_period(start[:7]), today, reconciliation_config())
    found = sorted(
        (r.code, r.contract_id if isinstance(r.contract_id, str) else "-")
        for r in result.findings.itertuples()
    )
    no_contract_invoice = invoices.loc[
        invoices["customer_id"] == seeded["no_contract"][0], "invoice_id"
    ]
    assert found == [
        ("overbilled", "800B"),
        ("quantity_mismatch", "800B"),
        ("unmatched_invoice", "-"),
    ]
    assert (
        result.findings.loc[result.findings["code"] == "unmatched_invoice", "invoice_id"].tolist()
        == no_contract_invoice.tolist()
    )
    assert result.matched.set_index("contract_id").loc["800A", "status"] == "clean"


def test_reading_n_invoices_costs_about_n_over_100_calls(
    localstripe: str, seeded: dict, sqlite_url: str
) -> None:
    client = stripe.StripeClient(
        "sk_test_revops", base_addresses={"api": localstripe}, max_network_retries=0
    )
    for n in range(150):
        seed(client, {"email": f"bulk{n}@example.test"}, 1, "plan_seat_usd")
    billing = connector(localstripe, sqlite_url)
    invoices, _ = billing.invoices()
    assert len(invoices) >= 153
    assert billing.calls == {"GET /v1/invoices": 2}


def test_price_change_is_applied_once_per_idempotency_key(
    localstripe: str, seeded: dict, sqlite_url: str
) -> None:
    # localstripe takes the new price under `plan` (its only form of price); Stripe under `price`.
    billing = connector(localstripe, sqlite_url, item_price_param="plan")
    _, subscription_id = seeded["metadata_linked"]
    item_id = billing.retrieve_subscription(subscription_id)["items"]["data"][0]["id"]
    changed = billing.change_subscription_price(
        subscription_id, item_id, "plan_seat_usd_2027", idempotency_key="migration-abc:001A"
    )
    assert changed["items"]["data"][0]["plan"]["id"] == "plan_seat_usd_2027"
    assert billing.calls["POST /v1/subscriptions/{id}"] == 1


# -- what localstripe lacks, over the fake Stripe server -----------------------------------


NOW = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp())


def year_of_invoices(count: int) -> list[dict]:
    return [invoice(f"in_{n:04d}", NOW - (count - n) * DAY) for n in range(count)]


def test_a_429_with_retry_after_is_waited_out_and_nothing_doubles(sqlite_url: str) -> None:
    with fake_stripe({"invoices": year_of_invoices(150)}) as server:
        server.faults.append(
            Fault(
                "/v1/invoices",
                429,
                {"Retry-After": "2"},
                {"error": {"type": "rate_limit_error", "message": "Too many requests"}},
            )
        )
        sleeps: list[float] = []
        billing = connector(server.url, sqlite_url, sleeps)
        invoices, lines = billing.invoices()
    assert sleeps == [2.0]
    assert billing.calls == {"GET /v1/invoices": 3}  # 2 pages + the refused attempt
    assert invoices["invoice_id"].is_unique and len(invoices) == 150 and len(lines) == 150


def test_5xx_and_a_dropped_connection_are_retried_with_backoff(sqlite_url: str) -> None:
    with fake_stripe({"invoices": year_of_invoices(20)}) as server:
        server.faults += [Fault("/v1/invoices", 500), Fault("/v1/invoices", drop=True)]
        sleeps: list[float] = []
        billing = connector(server.url, sqlite_url, sleeps)
        invoices, _ = billing.invoices()
    assert len(invoices) == 20
    assert (
        len(sleeps) == 2 and 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0
    )  # jittered, doubling
    assert billing.http.retries["GET /v1/invoices"] == 2


def test_a_400_is_not_retried_and_names_the_object(sqlite_url: str) -> None:
    with fake_stripe({"invoices": year_of_invoices(5)}) as server:
        server.faults.append(
            Fault(
                "/v1/invoices",
                400,
                body={
                    "error": {
                        "type": "invalid_request_error",
                        "message": "Invalid status: must be one of draft, open",
                        "param": "status",
                    }
                },
            )
        )
        billing = connector(server.url, sqlite_url, [])
        with pytest.raises(
            SourceError, match="Stripe refused the request for invoices list: Invalid status"
        ) as err:
            billing.invoices()
    assert not err.value.transient
    assert billing.calls == {"GET /v1/invoices": 1}


def test_stripe_should_retry_false_is_respected(sqlite_url: str) -> None:
    with fake_stripe({"customers": []}) as server:
        server.faults.append(Fault("/v1/customers", 503, {"Stripe-Should-Retry": "false"}))
        billing = connector(server.url, sqlite_url, [])
        with pytest.raises(SourceError, match="Stripe failed on customers list") as err:
            billing.customers()
    assert err.value.transient
    assert billing.calls == {"GET /v1/customers": 1}


def test_a_rate_limit_that_persists_gives_up_as_rate_limited(sqlite_url: str) -> None:
    with fake_stripe({"charges": []}) as server:
        server.faults += [
            Fault(
                "/v1/charges",
                429,
                body={"error": {"type": "rate_limit_error", "message": "slow down"}},
            )
            for _ in range(10)
        ]
        billing = connector(server.url, sqlite_url, [], max_retries=3)
        with pytest.raises(RateLimited, match="persisted after retries"):
            billing.charges()
    assert billing.calls == {"GET /v1/charges": 4}


def test_lines_beyond_the_embedded_page_are_paged_in(sqlite_url: str) -> None:
    with fake_stripe(
        {"invoices": [invoice("in_1Big", NOW, lines=125), invoice("in_1Small", NOW - DAY)]}
    ) as server:
        billing = connector(server.url, sqlite_url, [])
        _, lines = billing.invoices()
    assert lines.groupby("invoice_id").size().to_dict() == {"in_1Big": 125, "in_1Small": 1}
    assert billing.calls == {"GET /v1/invoices": 1, "GET /v1/invoices/{id}/lines": 2}


def test_an_incremental_run_reads_only_what_changed(sqlite_url: str) -> None:
    book = year_of_invoices(300)  # one a day for 300 days
    with fake_stripe({"invoices": book}) as server:
        first = connector(server.url, sqlite_url, [])
        assert len(first.invoices()[0]) == 300
        assert first.calls == {"GET /v1/invoices": 3}
        book[100]["status"] = "open"  # an old invoice still unpaid
        book.extend(invoice(f"in_new{n}", NOW + n * DAY) for n in range(1, 6))
        server.log.clear()
        second = connector(server.url, sqlite_url, [])
        invoices, _ = second.invoices()
    assert len(invoices) == 305 and invoices["invoice_id"].is_unique
    dated = server.requests("/v1/invoices")[0]
    newest_first_run = NOW - DAY
    assert int(dated["created[gte]"][0]) == newest_first_run - 35 * DAY  # cursor less the look-back
    assert second.calls == {"GET /v1/invoices": 3}  # created since, then open, then draft
    assert {tuple(sorted(q)) for q in server.requests("/v1/invoices")} == {
        ("created[gte]", "limit"),
        ("limit", "status"),
    }


def test_full_refresh_rereads_everything(sqlite_url: str) -> None:
    with fake_stripe({"invoices": year_of_invoices(120)}) as server:
        connector(server.url, sqlite_url, []).invoices()
        server.log.clear()
        settings = StripeSettings(api_key=SecretStr("sk_test_revops"), api_base=server.url)
        again = StripeBilling.from_settings(
            Warehouse(sqlite_url), settings=settings, full_refresh=True, sleep=lambda _s: None
        )
        assert len(again.invoices()[0]) == 120
    assert all("created[gte]" not in q for q in server.requests("/v1/invoices"))


def test_disputes_from_recorded_payloads(sqlite_url: str) -> None:
    # localstripe has no disputes: these are Stripe's dispute objects with the charge expanded.
    disputes = [
        {
            "id": "dp_1",
            "object": "dispute",
            "amount": 120_000,
            "currency": "usd",
            "status": "needs_response",
            "reason": "fraudulent",
            "created": NOW - 3 * DAY,
            "evidence_details": {"due_by": NOW + 11 * DAY},
            "charge": {"id": "ch_1", "object": "charge", "customer": "cus_A", "amount": 120_000},
        },
        {
            "id": "dp_2",
            "object": "dispute",
            "amount": 5_000,
            "currency": "jpy",
            "status": "lost",
            "reason": "product_not_received",
            "created": NOW - 40 * DAY,
            "evidence_details": {"due_by": None},
            "charge": {"id": "ch_2", "object": "charge", "customer": "cus_B", "amount": 5_000},
        },
    ]
    with fake_stripe({"disputes": disputes}) as server:
        frame_ = connector(server.url, sqlite_url, []).disputes()
    assert server.requests("/v1/disputes")[0]["expand[0]"] == ["data.charge"]
    assert frame_.set_index("dispute_id")[
        ["customer_id", "amount_minor", "currency", "status"]
    ].to_dict("index") == {
        "dp_1": {
            "customer_id": "cus_A",
            "amount_minor": 120_000,
            "currency": "USD",
            "status": "needs_response",
        },
        "dp_2": {
            "customer_id": "cus_B",
            "amount_minor": 5_000,
            "currency": "JPY",
            "status": "lost",
        },
    }


def test_missing_credentials_are_a_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    monkeypatch.delenv("STRIPE_SECRET_BLOCK", raising=False)
    with pytest.raises(ConfigError, match="needs STRIPE_API_KEY or STRIPE_SECRET_BLOCK"):
        StripeSettings(_env_file=None).key()


@pytest.mark.prefect
def test_the_key_can_come_from_a_prefect_secret_block(prefect_api: str) -> None:
    from prefect.blocks.system import Secret

    Secret(value="sk_test_from_block").save("stripe-api-key", overwrite=True)
    assert StripeSettings(api_key=None, secret_block="stripe-api-key").key() == "sk_test_from_block"
    assert "sk_test_from_block" not in repr(StripeSettings(api_key=SecretStr("sk_test_from_block")))


@pytest.mark.prefect
def test_the_flow_reconciles_live_stripe_billing_against_a_crm_export(
    prefect_api: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_source
) -> None:
    import json

    from revops.connectors.files_export import write_export
    from revops.flows.params import ReconcileParams
    from revops.flows.reconcile_invoices import reconcile_invoices

    invoices, lines = demo_source.invoices()
    # The whole CRM side of the book, its contract lines (Order/OrderItem) included: without
    # them contract 186 is judged on its contract-level price and its add-on item is noise.
    write_export(
        tmp_path / "crm",
        accounts=demo_source.accounts(),
        contracts=demo_source.contracts(),
        contract_lines=demo_source.contract_lines(),
    )
    write_export(
        tmp_path / "stripe",
        customers=demo_source.customers(),
        invoices=invoices,
        invoice_lines=lines,
    )
    served: dict[str, list[dict]] = {}
    for name in ("customers", "invoices"):
        objects = [
            json.loads(t) for t in (tmp_path / "stripe" / f"{name}.jsonl").read_text().splitlines()
        ]
        for obj in objects:
            if name == "invoices":
                obj["_all_lines"] = obj.pop("lines")["data"]
        served[name] = objects
    with fake_stripe(served) as server:
        monkeypatch.setenv("STRIPE_API_KEY", "sk_test_revops")
        monkeypatch.setenv("STRIPE_API_BASE", server.url)
        monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
        summary = reconcile_invoices(
            ReconcileParams(
                billing="stripe",
                crm="files",
                usage="demo",
                input_dir=str(tmp_path / "crm"),
                as_of=demo_source.as_of,
                out_dir=str(tmp_path / "out"),
            )
        )
    assert summary["source"] == "billing=stripe,crm=files,usage=demo"
    pages = -(-len(invoices) // 100)
    # Plus one (empty) page each of credit notes, charges and invoice payments (on the pinned
    # API a charge names no invoice; invoice payments tie them): money given back is read too.
    given_back = 3
    # And one of subscriptions: a book with contract lines links Stripe items through them.
    subscription_pages = 1
    customer_pages = -(-len(served["customers"]) // 100)
    assert summary["api_calls"] == {
        "stripe": pages + customer_pages + given_back + subscription_pages
    }
    findings = pd.read_csv(tmp_path / "out" / "reconciliation.csv", dtype=str)
    reported = {
        (r.code, r.contract_id if isinstance(r.contract_id, str) else r.invoice_id)
        for r in findings.itertuples()
    }
    # Money given back is not served here (no credit notes, charges or grants): those plants
    # are the credits tests' to show.
    assert reported == {
        (c, p.contract_id or p.invoice_id)
        for p in demo_source.planted
        if p.kind not in CREDIT_KINDS
        for c in p.codes
    }
    # And contract by contract, every period of every contract of the book: the live run's
    # outputs are the files run's over the same export, to the minor unit. The subscriptions
    # are served by neither (no item metadata names a line), so each invoice line finds its
    # contract line by price, the reprice's new price included.
    files = _reconcile_files(tmp_path / "crm", tmp_path / "stripe", demo_source)
    live_matched = pd.read_csv(tmp_path / "out" / "matched.csv", dtype=str).drop(columns="run_id")
    assert len(live_matched) == len(files.matched) > 0
    assert set(live_matched["contract_id"]) == set(files.matched["contract_id"])
    assert _rows(live_matched) == _rows(files.matched.drop(columns="run_id", errors="ignore"))
    money = ["code", "contract_id", "invoice_id", "expected_minor", "billed_minor"]
    assert _rows(findings[money]) == _rows(files.findings[money])


def _reconcile_files(crm: Path, stripe_folder: Path, demo_source) -> object:
    """The same export reconciled through the files source, as the flow reads it."""
    from datetime import timedelta

    from revops.connectors.files import FilesSource

    crm_side, billing = FilesSource(crm), FilesSource(stripe_folder)
    invoices, lines = billing.invoices()
    window = demo_source.window
    data = ReconciliationInput(
        crm_side.accounts(),
        crm_side.contracts(),
        billing.customers(),
        invoices,
        lines,
        contract_lines=crm_side.contract_lines(),
        usage=demo_source.usage(window.start, window.end + timedelta(days=366)),
    )
    return reconcile(data, window, demo_source.as_of, reconciliation_config())


def _rows(frame: pd.DataFrame) -> set[tuple[str, ...]]:
    """Rows as text tuples, as the flow's CSV writer writes them (a CSV read back is unchanged)."""
    import io

    text = io.StringIO(frame.to_csv(index=False, date_format="%Y-%m-%d"))
    read = pd.read_csv(text, dtype=str, keep_default_na=False)
    return set(read.sort_index(axis=1).itertuples(index=False, name=None))


def test_customers_are_read_whole_so_a_changed_link_is_seen(sqlite_url: str) -> None:
    old = {"id": "cus_1Old", "object": "customer", "created": NOW - 400 * DAY, "metadata": {}}
    with fake_stripe({"customers": [old]}) as server:
        assert (
            connector(server.url, sqlite_url, []).customers()["salesforce_account_id"].isna().all()
        )
        old["metadata"] = {"salesforce_account_id": "001A"}  # linked later, in place
        again = connector(server.url, sqlite_url, [])
        assert again.customers()["salesforce_account_id"].tolist() == ["001A"]
    assert all("created[gte]" not in q for q in server.requests("/v1/customers"))
