"""One factory for the commands that run a flow on the usual source options.

`revops reconcile`, `risk`, `leads`, `weekly`, `hygiene` and `mrr` share their options (source,
input, as-of, output folder, demo book) and differ in a few fields of their flow's parameter
model; each option's default and help come from that model (`field_option`).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import typer

from revops.cli.common import errors, field_option, params_from, parse_date, run_action
from revops.cli.progress import run_progress
from revops.connectors.choices import SourceKind
from revops.flows.params import SourceOptions, SourceParams
from revops.prefect_env import apply_local_defaults
from revops.prefect_server import wait_for_temporary_api
from revops.settings import get_settings


@dataclass(frozen=True)
class Extra:
    """A command's own option: a field of its flow's parameter model (or of `advanced`)."""

    field: str
    annotation: Any
    flags: tuple[str, ...] = ()
    advanced: bool = False


def as_of_option(help_text: str = "YYYY-MM-DD. Default: today (UTC).") -> Any:
    """The --as-of option (a date, parsed and checked when the command runs)."""
    return typer.Option(None, "--as-of", help=help_text)


def demo_size_option(*flags: str) -> Any:
    """The demo book's size (an advanced flow parameter)."""
    return field_option(SourceOptions, "demo_size", *flags)


def seed_option() -> Any:
    """The demo book's seed (an advanced flow parameter)."""
    return field_option(SourceOptions, "demo_seed", "--seed")


def _parameters(
    model: type[SourceParams], extras: Sequence[Extra], as_of_help: str | None
) -> list[inspect.Parameter]:
    folder = get_settings().out_dir / model.OUT_SUBDIR
    own = [
        (e.field, e.annotation, field_option(_owner(model, e), e.field, *e.flags)) for e in extras
    ]
    plain = sum(not e.advanced for e in extras)
    given = [
        ("source", SourceKind, field_option(SourceParams, "source")),
        *own[:plain],
        ("input_dir", str | None, field_option(SourceParams, "input_dir", "--input")),
        ("as_of", str | None, as_of_option(*([as_of_help] if as_of_help else []))),
        ("out", str | None, typer.Option(None, "--out", help=f"Output folder. Default: {folder}.")),
        ("demo_size", int | None, demo_size_option()),
        ("seed", int | None, seed_option()),
        *own[plain:],
    ]
    kind = inspect.Parameter.KEYWORD_ONLY
    return [inspect.Parameter(n, kind, default=d, annotation=a) for n, a, d in given]


def _owner(model: type[SourceParams], extra: Extra) -> type:
    """The model declaring an extra's field: the flow's model, or its advanced options."""
    return model.model_fields["advanced"].annotation if extra.advanced else model


def flow_command(
    app: typer.Typer,
    name: str,
    model: type[SourceParams],
    flow: str,
    printer: Callable[[dict[str, Any]], None],
    doc: str,
    extras: Sequence[Extra] = (),
    as_of_help: str | None = None,
) -> None:
    """Register `revops <name>`: run `flow` ("module:function") on `model` built from the
    options, then print its summary with `printer`. Advanced extras (listed after the plain
    ones) go into the model's `advanced` group, like the demo book's size and seed."""
    advanced_fields = {e.field for e in extras if e.advanced}

    def command(**given: Any) -> None:
        apply_local_defaults()

        def action() -> dict:
            module, function = flow.split(":")
            run = getattr(importlib.import_module(module), function)
            wait_for_temporary_api()
            options = {k: v for k, v in given.items() if k not in advanced_fields}
            advanced = {k: given[k] for k in advanced_fields}
            advanced |= {"demo_size": options.pop("demo_size"), "demo_seed": options.pop("seed")}
            options["out_dir"] = options.pop("out")
            options["as_of"] = parse_date(options["as_of"], "--as-of")
            params = params_from(model, options, advanced)
            with run_progress(errors, f"revops {name}"):
                return run(params)

        printer(run_action(action))

    parameters = _parameters(model, extras, as_of_help)
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__doc__ = doc
    app.command(name)(command)
