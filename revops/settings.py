"""Runtime settings: one pydantic-settings model read from the environment (and `.env`).

Secrets are `SecretStr` and are read inside the flow run, never at import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where state lives. Every field can be set as REVOPS_<FIELD> in the environment."""

    model_config = SettingsConfigDict(env_prefix="REVOPS_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///var/revops.db",
        description="SQLAlchemy URL of the warehouse; PostgreSQL: postgresql+psycopg://...",
    )
    out_dir: Path = Field(default=Path("var/out"), description="Default output folder.")
    task_runner: Literal["threads", "dask"] = Field(
        default="threads",
        description="Where partitioned work runs: local threads, or a Dask cluster (prefect-dask).",
    )
    dask_address: str | None = Field(
        default=None, description="Scheduler address of an existing Dask cluster (tcp://host:8786)."
    )
    dask_workers: int = Field(default=2, ge=1, description="Workers of a local Dask cluster.")
    signoff_open_high: Literal["warn", "refuse"] = Field(
        default="warn",
        description="`revops review signoff` while high-severity findings are still open: "
        "warn and sign off, or refuse (exit 2).",
    )
    reports_block: str | None = Field(
        default=None,
        description="Slug of the Prefect filesystem block reports are published to "
        "(`local-file-system/revops-reports`, `s3-bucket/reports`); unset: a file:// link.",
    )
    reports_base_url: str | None = Field(
        default=None,
        description="The http(s) URL the reports block's root is served at; the report link "
        "artifact points under it.",
    )
    salesforce_link_base: str | None = Field(
        default=None,
        description="https:// URL of the Salesforce org records link to when the CRM data comes "
        "from files or the demo (live Salesforce links to the org it logged in to).",
    )


def get_settings() -> Settings:
    """Settings from the current environment (re-read on every call, for tests and flows)."""
    return Settings()


def task_runner_from_settings(settings: Settings | None = None) -> object:
    """The flow task runner the settings select (a Dask cluster needs the `dask` extra)."""
    settings = settings or get_settings()
    if settings.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if settings.dask_address:
            return DaskTaskRunner(address=settings.dask_address)
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": settings.dask_workers, "threads_per_worker": 1}
        )
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner()
