"""Settings of the live Salesforce connector: configs/salesforce.yaml and the SALESFORCE_*
credentials (secrets as SecretStr, read inside the run, never logged)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from revops.config import StrictConfig, load_config
from revops.errors import ConfigError


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
