"""Settings of the live Stripe source: configs/stripe.yaml and the STRIPE_* environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from revops.config import StrictConfig, load_config
from revops.errors import ConfigError


class StripeConfig(StrictConfig):
    """configs/stripe.yaml."""

    api_version: str
    page_size: int = Field(default=100, ge=1, le=100)
    timeout_seconds: float = Field(default=30, gt=0)
    max_retries: int = Field(default=5, ge=0, le=10)
    backoff_seconds: float = Field(default=1.0, ge=0)
    max_backoff_seconds: float = Field(default=30.0, ge=0)
    requests_per_second: float = Field(default=20, gt=0)
    prefect_rate_limit: str | None = None
    lookback_days: dict[str, int] = Field(default_factory=dict)
    # Objects that change in place (a customer's metadata link, a subscription's price) and
    # that Stripe cannot list by update time: read whole every run, never by `created`.
    read_whole: list[str] = Field(default_factory=lambda: ["customers", "subscriptions"])
    # Subscription item updates name the new price under this key. Stripe takes `price`;
    # localstripe (tests) knows only `plan`, the older form (plan ids work as price ids).
    item_price_param: str = "price"


@lru_cache(maxsize=4)
def stripe_config(directory: Path | None = None) -> StripeConfig:
    """configs/stripe.yaml, validated."""
    return load_config(StripeConfig, "stripe.yaml", directory)


class StripeSettings(BaseSettings):
    """Credentials and endpoint, from the environment (STRIPE_*)."""

    model_config = SettingsConfigDict(env_prefix="STRIPE_", env_file=".env", extra="ignore")

    api_key: SecretStr | None = None
    api_base: str | None = None
    secret_block: str | None = Field(
        default=None, description="Name of a Prefect Secret block holding the API key."
    )
    prefect_rate_limit: str | None = Field(
        default=None,
        description="Prefect global concurrency limit shared by every flow calling Stripe "
        "(overrides configs/stripe.yaml; deployments set stripe-api).",
    )

    def key(self) -> str:
        """The API key: STRIPE_API_KEY, else the Prefect Secret block. Never logged."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.secret_block:
            from prefect.blocks.system import Secret

            value = Secret.load(self.secret_block).get()
            if not isinstance(value, str):
                raise ConfigError(f"Prefect Secret block {self.secret_block!r} must hold a string")
            return value
        raise ConfigError(
            "the Stripe source needs STRIPE_API_KEY or STRIPE_SECRET_BLOCK (a Prefect Secret block)"
        )
