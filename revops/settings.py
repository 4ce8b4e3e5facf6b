"""Runtime settings: one pydantic-settings model read from the environment (and `.env`).

Secrets are `SecretStr` and are read inside the flow run, never at import.
"""

from __future__ import annotations

from pathlib import Path

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


def get_settings() -> Settings:
    """Settings from the current environment (re-read on every call, for tests and flows)."""
    return Settings()
