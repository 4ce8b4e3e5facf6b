"""Who may approve a migration: the rule that the approver is not who triggered the run.

Prefect 3 records who created a flow run in `flow_run.created_by` ({id, type, display_value}).
Prefect OSS fills it only for machines: `SCHEDULE` (a deployment schedule) and `AUTOMATION`
(an automation's run-deployment action, display_value = the automation's name). A run started
from the UI, the API or the CLI has `created_by` null: OSS has no user accounts. Prefect Cloud
also records people (`USER`, `SERVICE_ACCOUNT`, with their name as display_value). So:

- a person is known (Cloud): the approver's typed name must not be that person's;
- a machine triggered it: there is no person to compare, the trigger is recorded;
- nobody is recorded (OSS, by hand): the approver must still name themselves (the form
  requires a name) and the triggerer is recorded as `unknown`.

Pure functions: the flow reads `created_by` from the API and records what these return.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PEOPLE = frozenset({"USER", "SERVICE_ACCOUNT"})
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Triggerer:
    """Who created the flow run, as far as Prefect tells it."""

    kind: str  # "person", "machine" or "unknown"
    name: str | None = None
    type: str | None = None

    @property
    def label(self) -> str:
        """The value recorded with the decision: `USER: Sam`, `AUTOMATION: nightly`, `unknown`."""
        if self.kind == "unknown":
            return UNKNOWN
        return f"{self.type}: {self.name}" if self.name else str(self.type)


def triggerer_of(created_by: Any) -> Triggerer:
    """The triggerer from a flow run's `created_by` (a CreatedBy object, a dict, or None)."""
    if created_by is None:
        return Triggerer("unknown")
    if isinstance(created_by, dict):
        kind, name = created_by.get("type"), created_by.get("display_value")
    else:
        kind, name = getattr(created_by, "type", None), getattr(created_by, "display_value", None)
    if not kind:
        return Triggerer("unknown")
    kind = str(kind).upper()
    return Triggerer("person" if kind in PEOPLE else "machine", name or None, kind)


def same_person(a: str, b: str) -> bool:
    """Whether two typed names are one person's: case, spacing and an e-mail domain ignored."""

    def norm(name: str) -> str:
        return " ".join(name.split("@", 1)[0].replace(".", " ").casefold().split())

    return bool(norm(a)) and norm(a) == norm(b)


def approval_refusal(
    reviewer: str, approve: bool, triggerer: Triggerer, *, approver_not_triggerer: bool
) -> str | None:
    """Why this decision cannot be accepted, or None when it can.

    A rejection is always accepted (stopping a run is never the risk); an approval by the
    person Prefect says triggered the run is refused when the rule is on.
    """
    if not reviewer.strip():
        return "the reviewer must give their name"
    if not approve or not approver_not_triggerer or triggerer.kind != "person":
        return None
    if triggerer.name and same_person(reviewer, triggerer.name):
        return (
            f"{reviewer} triggered this run ({triggerer.label}) and cannot approve it: "
            "another reviewer must (configs/migrations.yaml approver_not_triggerer)"
        )
    return None
