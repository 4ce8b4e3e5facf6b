"""The base of every flow parameter model: a plain form (no null defaults, the flow's own
fields first, output and advanced options last) that refuses unknown fields, and the field
types that keep a form free of `X | None` toggles."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from revops.connectors.choices import DEMO_SEED, DEMO_SIZE

# A date the form shows as a plain date picker; empty means "today (UTC)". The schema is
# written by hand so it is not a `date | None` toggle.
OptionalDate = Annotated[date | None, WithJsonSchema({"type": "string", "format": "date"})]
OptionalCount = Annotated[int | None, WithJsonSchema({"type": "integer", "minimum": 0})]
OptionalPercent = Annotated[
    float | None, WithJsonSchema({"type": "number", "minimum": 0, "maximum": 100})
]

LAST_IN_FORM = ("out_dir", "advanced")


def plain_form(schema: dict[str, Any]) -> None:
    """The flow's own fields first, output and advanced options last; no null defaults.

    A `"default": null` on a field typed string or integer would be submitted by a form as null
    and refused by the schema; an absent default leaves the field empty.
    """
    properties = schema.get("properties", {})
    for prop in properties.values():
        if "default" in prop and prop["default"] is None:
            del prop["default"]
    ordered = sorted(properties, key=lambda n: LAST_IN_FORM.index(n) if n in LAST_IN_FORM else -1)
    schema["properties"] = {name: properties[name] for name in ordered}


class FormModel(BaseModel):
    """A parameter model: unknown fields are refused (a typo is an error, not ignored)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=plain_form)


def demo_size_field() -> Any:
    """The demo book's size, an advanced option of every flow that can read the demo."""
    return Field(
        default=DEMO_SIZE,
        ge=200,
        le=200_000,
        title="Demo book size",
        description="Contracts in the demo book (demo source only).",
    )


def demo_seed_field() -> Any:
    """The demo book's seed, beside its size."""
    return Field(default=DEMO_SEED, title="Demo book seed", description="Seed of the demo book.")
