"""What every `revops` command shares: the consoles, error handling, option parsing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console

from revops.errors import InputError, RevOpsError
from revops.money import format_money

console = Console()
errors = Console(stderr=True)


def run_action(action: Callable[[], Any]) -> Any:
    """Run an action; turn our errors into a message and a non-zero exit."""
    try:
        return action()
    except InputError as exc:
        errors.print(f"[bold red]Input error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except RevOpsError as exc:
        errors.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            errors.print(f"[bold red]Invalid parameter[/] {where}: {err['msg']}", highlight=False)
        raise typer.Exit(2) from None


def parse_date(value: str | None, option: str) -> date | None:
    """An ISO date option, or exit 2 naming the option."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.print(
            f"[bold red]Invalid parameter[/] {option}: {value!r} is not a date (YYYY-MM-DD)"
        )
        raise typer.Exit(2) from None


def amount_text(amount_minor: int | None, currency: str | None) -> str:
    """An amount without its currency code (the table's currency column names it)."""
    if amount_minor is None or currency is None:
        return "—"
    return format_money(amount_minor, currency).split(" ", 1)[1]


def field_option(model: type[BaseModel], name: str, *flags: str) -> Any:
    """A typer option whose default and help come from a flow parameter model's field.

    The model is the one definition of a parameter: an empty default (None, "") stays None on
    the command line, so the model's own default applies (see `params_from`).
    """
    field = model.model_fields[name]
    default = field.get_default(call_default_factory=True)
    return typer.Option(None if default in (None, "") else default, *flags, help=field.description)


def params_from(model: type[BaseModel], options: dict[str, Any], advanced: dict[str, Any]) -> Any:
    """The flow's parameter model from the options given (None: the model's default)."""
    given = {k: v for k, v in options.items() if v is not None}
    return model(**given, advanced={k: v for k, v in advanced.items() if v is not None})
