"""The live usage source: a configurable query against a real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from revops.connectors.demo import DemoSource
from revops.connectors.usage_sql import SqlUsage, UsageConfig, usage_config
from revops.errors import ConfigError, InputError
from revops.flows.flag_at_risk import RiskParams, flag_at_risk
from tests.conftest import DEMO_AS_OF

pytestmark = [pytest.mark.prefect]

START, END = DEMO_AS_OF - timedelta(days=150), DEMO_AS_OF


@pytest.fixture
def product_warehouse(postgres_url: str, demo_source: DemoSource) -> str:
    """The product's usage table, filled with the demo book's daily usage."""
    usage = demo_source.usage(START, END).rename(columns={"date": "usage_date"})
    engine = sa.create_engine(postgres_url)
    usage.to_sql("product_usage_daily", engine, if_exists="replace", index=False, chunksize=50_000)
    engine.dispose()
    yield postgres_url
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS product_usage_daily"))
    engine.dispose()


def test_the_query_returns_the_canonical_usage(
    product_warehouse: str, demo_source: DemoSource
) -> None:
    window = (DEMO_AS_OF - timedelta(days=30), DEMO_AS_OF)
    got = SqlUsage(product_warehouse, usage_config()).usage(*window)
    expected = demo_source.usage(*window)
    key = ["account_id", "date", "metric"]
    pd.testing.assert_frame_equal(
        got.sort_values(key).reset_index(drop=True),
        expected.sort_values(key).reset_index(drop=True),
    )


def test_bad_rows_are_named_by_row_and_column(product_warehouse: str) -> None:
    engine = sa.create_engine(product_warehouse)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO product_usage_daily VALUES (NULL, :d, 'active_seats', 3)"),
            {"d": DEMO_AS_OF - timedelta(days=1)},
        )
    engine.dispose()
    query = usage_config().query + " ORDER BY account_id NULLS FIRST"
    with pytest.raises(
        InputError, match=r"usage query result .*, row 1, column account_id: value is required"
    ):
        SqlUsage(product_warehouse, UsageConfig(query=query)).usage(START, END)


def test_a_query_missing_a_column_is_a_clear_error(product_warehouse: str) -> None:
    query = "SELECT account_id, usage_date AS date, quantity FROM product_usage_daily"
    with pytest.raises(InputError, match="the query returns no column"):
        SqlUsage(product_warehouse, UsageConfig(query=query)).usage(START, END)


def test_the_url_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REVOPS_USAGE_DATABASE_URL", raising=False)
    with pytest.raises(ConfigError, match="needs REVOPS_USAGE_DATABASE_URL"):
        SqlUsage.from_settings()


@pytest.mark.prefect
def test_risk_scores_from_the_product_warehouse_match_the_demo(
    prefect_api: str,
    product_warehouse: str,
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("REVOPS_USAGE_DATABASE_URL", product_warehouse)
    live = flag_at_risk(RiskParams(as_of=DEMO_AS_OF, usage="sql", out_dir=str(tmp_path / "sql")))
    demo = flag_at_risk(RiskParams(as_of=DEMO_AS_OF, out_dir=str(tmp_path / "demo")))
    assert live["source"] == "billing=demo,crm=demo,usage=sql"
    assert live["tiers"] == demo["tiers"]
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "sql" / "at_risk.csv").drop(
            columns=["previous_tier", "score_change", "why_changed"]
        ),
        pd.read_csv(tmp_path / "demo" / "at_risk.csv").drop(
            columns=["previous_tier", "score_change", "why_changed"]
        ),
    )
