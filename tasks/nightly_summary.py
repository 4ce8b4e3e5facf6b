"""The nightly run's summary artifact: one row per part with its state, counts and links.

Pure: the flow gathers each part's child flow run (id, state, result) and its report link
artifact, this module writes the markdown the Prefect UI shows on the nightly run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from revops.escaping import markdown_text


@dataclass(frozen=True)
class NightlyPart:
    """One part of the nightly run as the summary shows it."""

    name: str
    state: str
    flow_run_id: str | None = None
    message: str | None = None
    result: dict[str, Any] | None = None
    report_url: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def part_counts(name: str, result: dict[str, Any] | None) -> str:
    """The few numbers a reader of the nightly summary wants from each part."""
    if not result:
        return ""
    if name == "reconciliation":
        counts = result.get("counts", {})
        return (
            f"{counts.get('findings', 0)} findings; {counts.get('contract_periods_due', 0)} "
            f"periods due, {counts.get('contract_periods_clean', 0)} clean"
        )
    if name == "risk":
        tiers = result.get("tiers", {})
        newly = len(result.get("newly_at_risk", []))
        return ", ".join(f"{n} {t}" for t, n in tiers.items()) + f"; {newly} newly at risk"
    counts = result.get("counts") or {}
    return ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items())) or "none"


def nightly_markdown(title: str, parts: list[NightlyPart], ui_url: str | None) -> str:
    """The summary: a table of parts (state, counts, the child run, its report)."""
    base = (ui_url or "").rstrip("/")
    lines = [
        f"# {markdown_text(title)}",
        "",
        f"{sum(p.state == 'Completed' for p in parts)} of {len(parts)} parts completed.",
        "",
        "| Part | State | Counts | Run | Report |",
        "|---|---|---|---|---|",
    ]
    for part in parts:
        state = part.state if part.state == "Completed" else f"**{part.state}**"
        if part.message and part.state != "Completed":
            state += f": {markdown_text(part.message[:200])}"
        run = f"[run]({base}/runs/flow-run/{part.flow_run_id})" if part.flow_run_id else ""
        report = f"[report]({part.report_url})" if part.report_url else ""
        counts = markdown_text(part_counts(part.name, part.result))
        lines.append(f"| {part.name} | {state} | {counts} | {run} | {report} |")
    return "\n".join(lines) + "\n"
