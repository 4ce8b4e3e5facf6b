"""The warehouse's tables (SQLAlchemy Core): reconciliation runs, their findings and matches,
risk scores, lead handoffs, reviews and sign-offs, and where each run published its files.

Tables are created on first use (connectors.warehouse); columns added after a table first
shipped are added to older warehouses by connectors.warehouse_upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

reconciliation_runs = sa.Table(
    "reconciliation_runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("period", sa.String(16), nullable=False),
    sa.Column("window_start", sa.Date, nullable=False),
    sa.Column("window_end", sa.Date, nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("parameters", sa.Text, nullable=False),
    sa.Column("input_fingerprints", sa.Text, nullable=False),
    sa.Column("counts", sa.Text, nullable=False),
    sa.Column("totals", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

reconciliation_findings = sa.Table(
    "reconciliation_findings",
    metadata,
    sa.Column(
        "run_id", sa.String(64), sa.ForeignKey("reconciliation_runs.run_id"), primary_key=True
    ),
    sa.Column("finding_key", sa.String(200), primary_key=True),
    sa.Column("code", sa.String(40), nullable=False),
    sa.Column("severity", sa.String(10), nullable=False),
    sa.Column("account_id", sa.String(64)),
    sa.Column("contract_id", sa.String(64)),
    sa.Column("invoice_id", sa.Text),
    sa.Column("period_start", sa.Date),
    sa.Column("period_end", sa.Date),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("expected_minor", sa.BigInteger),
    sa.Column("billed_minor", sa.BigInteger),
    sa.Column("variance_minor", sa.BigInteger),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Index("ix_findings_contract", "contract_id", "period_start"),
)

reconciliation_matches = sa.Table(
    "reconciliation_matches",
    metadata,
    sa.Column(
        "run_id", sa.String(64), sa.ForeignKey("reconciliation_runs.run_id"), primary_key=True
    ),
    sa.Column("contract_id", sa.String(64), primary_key=True),
    sa.Column("period_start", sa.Date, primary_key=True),
    sa.Column("invoice_id", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.String(64)),
    sa.Column("period_end", sa.Date),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("expected_minor", sa.BigInteger, nullable=False),
    sa.Column("billed_minor", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(200), nullable=False),
    # Added after the table first shipped (connectors.warehouse_upgrade): NULL on older rows.
    sa.Column("credited_minor", sa.BigInteger),
    sa.Column("refunded_minor", sa.BigInteger),
    sa.Column("net_billed_minor", sa.BigInteger),
)


risk_runs = sa.Table(
    "risk_runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("counts", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# One row per account and run: the score history "why it changed" compares against.
RISK_SCORE_COLUMNS = (
    "score",
    "tier",
    "reasons",
    "data_gaps",
    "usage_trend_score",
    "seat_utilisation_score",
    "disputes_score",
    "payments_score",
    "cases_score",
    "renewal_score",
)
risk_scores = sa.Table(
    "risk_scores",
    metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("risk_runs.run_id"), primary_key=True),
    sa.Column("account_id", sa.String(64), primary_key=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("data_gaps", sa.Text, nullable=False),
    *(sa.Column(c, sa.Integer, nullable=False) for c in RISK_SCORE_COLUMNS[4:]),
    sa.Index("ix_risk_scores_account", "account_id", "as_of"),
)


lead_runs = sa.Table(
    "lead_runs",
    metadata,
    sa.Column("run_key", sa.String(120), primary_key=True),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("counts", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# Reviewers' decisions on findings, kept whole (history); the newest per finding key counts.
finding_reviews = sa.Table(
    "finding_reviews",
    metadata,
    sa.Column("review_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("reconciliation_runs.run_id"), nullable=False),
    sa.Column("finding_key", sa.String(200), nullable=False),
    sa.Column("decision", sa.String(20), nullable=False),
    sa.Column("owner", sa.String(120)),
    sa.Column("reviewer", sa.String(120), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("expected_minor", sa.BigInteger),
    sa.Column("billed_minor", sa.BigInteger),
    sa.Column("variance_minor", sa.BigInteger),
    sa.Index("ix_finding_reviews_key", "finding_key", "decided_at"),
)

run_signoffs = sa.Table(
    "run_signoffs",
    metadata,
    sa.Column(
        "run_id", sa.String(64), sa.ForeignKey("reconciliation_runs.run_id"), primary_key=True
    ),
    sa.Column("reviewer", sa.String(120), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
)

# Where each run's files were published (revops.publishing): the run folder under an output
# folder. A separate table, so warehouses made before it gain it through create_all.
run_outputs = sa.Table(
    "run_outputs",
    metadata,
    sa.Column(
        "run_id", sa.String(64), sa.ForeignKey("reconciliation_runs.run_id"), primary_key=True
    ),
    sa.Column("out_dir", sa.Text, nullable=False),
    sa.Column("folder", sa.Text, nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
)

# The same for the other flows that publish files and warehouse rows (risk, leads): keyed by
# flow and run key, written in the transaction of the run's rows.
flow_outputs = sa.Table(
    "flow_outputs",
    metadata,
    sa.Column("flow", sa.String(32), primary_key=True),
    sa.Column("run_key", sa.String(120), primary_key=True),
    sa.Column("out_dir", sa.Text, nullable=False),
    sa.Column("folder", sa.Text, nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
)
