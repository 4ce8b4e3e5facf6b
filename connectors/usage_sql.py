"""The live usage source: a configurable SQL query over the product's warehouse.

Any SQLAlchemy URL (REVOPS_USAGE_DATABASE_URL); the query (configs/usage.yaml) binds :start
and :end and returns account_id, date, metric, quantity. The result is validated like any
other source: a bad row is reported by its position in the result and its column.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.exc import SQLAlchemyError

from revops.config import StrictConfig, load_config
from revops.errors import ConfigError, InputError, SourceError
from revops.frames import DATE, SourceLocation, conform, validate_frame

COLUMNS = ("account_id", "date", "metric", "quantity")
RESULT = "usage query result (configs/usage.yaml)"


class UsageConfig(StrictConfig):
    """configs/usage.yaml."""

    query: str
    chunk_rows: int = Field(default=200_000, ge=1)


@lru_cache(maxsize=4)
def usage_config(directory: Path | None = None) -> UsageConfig:
    """configs/usage.yaml, validated."""
    return load_config(UsageConfig, "usage.yaml", directory)


class UsageSettings(BaseSettings):
    """Where the product's usage lives (REVOPS_USAGE_DATABASE_URL; it may hold a password)."""

    model_config = SettingsConfigDict(env_prefix="REVOPS_", env_file=".env", extra="ignore")

    usage_database_url: SecretStr | None = None


class SqlUsage:
    """UsageSource over a SQL query."""

    name = "sql"

    def __init__(self, url: str, config: UsageConfig) -> None:
        self.config = config
        try:
            self.engine = sa.create_engine(url)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise ConfigError(
                f"invalid REVOPS_USAGE_DATABASE_URL: {exc.__class__.__name__}"
            ) from None
        self.url_shown = self.engine.url.render_as_string(hide_password=True)

    @classmethod
    def from_settings(
        cls, settings: UsageSettings | None = None, config: UsageConfig | None = None
    ) -> SqlUsage:
        """From REVOPS_USAGE_DATABASE_URL and configs/usage.yaml, read inside the run."""
        settings = settings or UsageSettings()
        if settings.usage_database_url is None:
            raise ConfigError("the sql usage source needs REVOPS_USAGE_DATABASE_URL")
        return cls(settings.usage_database_url.get_secret_value(), config or usage_config())

    def usage(self, start: date, end: date) -> pd.DataFrame:
        """Daily usage with start <= date < end, as the canonical `usage` frame."""
        try:
            with self.engine.connect() as conn:
                chunks = list(
                    pd.read_sql(
                        sa.text(self.config.query),
                        conn,
                        params={"start": start, "end": end},
                        chunksize=self.config.chunk_rows,
                    )
                )
        except SQLAlchemyError as exc:
            raise SourceError(
                f"the usage query failed on {self.url_shown}: {exc.__class__.__name__}: "
                f"{getattr(exc, 'orig', None) or exc}",
                transient=isinstance(exc, sa.exc.OperationalError),
            ) from None
        raw = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=COLUMNS)
        missing = [c for c in COLUMNS if c not in raw.columns]
        if missing:
            raise InputError(f"the query returns no column(s) {', '.join(missing)}", file=RESULT)
        return validate_frame("usage", _canonical(raw), SourceLocation(file=RESULT))


def _canonical(raw: pd.DataFrame) -> pd.DataFrame:
    dates = pd.to_datetime(raw["date"], errors="coerce")
    bad_dates = dates.isna() & raw["date"].notna()
    if bad_dates.any():
        row = int(bad_dates.to_numpy().argmax()) + 1
        raise InputError(
            f"{raw['date'].iloc[row - 1]!r} is not a date", file=RESULT, row=row, column="date"
        )
    quantity = pd.to_numeric(raw["quantity"], errors="coerce")
    bad_quantity = quantity.isna() & raw["quantity"].notna()
    if bad_quantity.any():
        row = int(bad_quantity.to_numpy().argmax()) + 1
        raise InputError(
            f"{raw['quantity'].iloc[row - 1]!r} is not a number",
            file=RESULT,
            row=row,
            column="quantity",
        )
    frame = pd.DataFrame(
        {
            "account_id": raw["account_id"].astype("str"),
            "date": dates.dt.tz_localize(None).dt.normalize().astype(DATE)
            if dates.dt.tz
            else dates.dt.normalize().astype(DATE),
            "metric": raw["metric"].astype("str"),
            "quantity": quantity.astype("float64"),
        }
    )
    return conform("usage", frame)
