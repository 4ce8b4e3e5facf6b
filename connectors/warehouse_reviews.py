"""Reviewers' decisions on findings and sign-offs of runs, in the warehouse."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from revops.connectors.choices import DECISIONS
from revops.connectors.warehouse_base import WarehouseBase
from revops.connectors.warehouse_schema import (
    finding_reviews,
    reconciliation_findings,
    reconciliation_runs,
    run_signoffs,
)
from revops.errors import InputError


class ReviewStore(WarehouseBase):
    """Decisions (history kept whole; the newest per finding key counts) and sign-offs."""

    def record_decision(
        self,
        run_id: str,
        finding_key: str,
        decision: str,
        reviewer: str,
        comment: str = "",
        owner: str | None = None,
    ) -> dict[str, Any]:
        """Record a reviewer's decision on one finding of a run, with the amounts it was about."""
        if decision not in DECISIONS:
            raise InputError(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
        if decision == "fix" and not owner:
            raise InputError("a `fix` decision needs an owner (who fixes it)")
        if not reviewer.strip():
            raise InputError("a decision needs the reviewer's name")
        findings = reconciliation_findings.c
        query = sa.select(
            findings.currency,
            findings.expected_minor,
            findings.billed_minor,
            findings.variance_minor,
        ).where((findings.run_id == run_id) & (findings.finding_key == finding_key))
        with self.transaction() as conn:
            found = conn.execute(query).mappings().one_or_none()
            if found is None:
                raise InputError(f"run {run_id} has no finding {finding_key!r}")
            row = {
                "run_id": run_id,
                "finding_key": finding_key,
                "decision": decision,
                "owner": owner,
                "reviewer": reviewer.strip(),
                "comment": comment,
                "decided_at": datetime.now(UTC),
                **found,
            }
            conn.execute(finding_reviews.insert(), row)
        return row

    def latest_decisions(self, finding_keys: list[str]) -> pd.DataFrame:
        """The newest decision per finding key (any run), for carrying decisions forward."""
        reviews = finding_reviews.c
        frames = []
        with self.engine.connect() as conn:
            for start in range(0, len(finding_keys), 500):
                chunk = finding_keys[start : start + 500]
                query = sa.select(finding_reviews).where(reviews.finding_key.in_(chunk))
                frames.append(pd.DataFrame(conn.execute(query).mappings().all()))
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if frame.empty:
            return pd.DataFrame(columns=[c.name for c in finding_reviews.columns])
        return (
            frame.sort_values(["decided_at", "review_id"])
            .drop_duplicates("finding_key", keep="last")
            .reset_index(drop=True)
        )

    def sign_off(self, run_id: str, reviewer: str, comment: str = "") -> None:
        """Sign a run off as reviewed (again: the newest sign-off replaces the previous)."""
        if not reviewer.strip():
            raise InputError("a sign-off needs the reviewer's name")
        with self.transaction() as conn:
            exists = conn.execute(
                sa.select(reconciliation_runs.c.run_id).where(
                    reconciliation_runs.c.run_id == run_id
                )
            ).scalar_one_or_none()
            if exists is None:
                raise InputError(f"no reconciliation run {run_id!r}")
            conn.execute(run_signoffs.delete().where(run_signoffs.c.run_id == run_id))
            conn.execute(
                run_signoffs.insert(),
                {
                    "run_id": run_id,
                    "reviewer": reviewer.strip(),
                    "comment": comment,
                    "signed_at": datetime.now(UTC),
                },
            )

    def signoff_of(self, run_id: str) -> dict[str, Any] | None:
        """The run's sign-off (reviewer, comment, signed_at), or None."""
        query = sa.select(run_signoffs).where(run_signoffs.c.run_id == run_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().one_or_none()
        return dict(row) if row else None
