"""The source choices and the demo book's defaults: plain data every layer may read.

Kept apart from the registry (which imports pandas and the connectors) so the CLI can build
its options, and the flows their parameter forms, without importing them.
"""

from __future__ import annotations

from typing import Literal

SourceKind = Literal["demo", "files", "live"]
BillingKind = Literal["demo", "files", "stripe"]
CrmKind = Literal["demo", "files", "salesforce"]
UsageKind = Literal["demo", "files", "sql"]

DEMO_SIZE = 240
"""Contracts in the demo book unless a run asks for another size."""
DEMO_SEED = 7
"""Seed of the demo book unless a run asks for another."""

DECISIONS = ("accepted", "fix", "false_positive")
"""What a reviewer may decide on a finding."""

RolledBackChoice = Literal["ask", "skip", "reapply"]
"""What a migration apply does with accounts its plan was rolled back on (asked: it stops)."""
