"""Critical signals: billing and support alarms that cap the health tier.

A weighted average lets one good signal hide another: an account using every seat scores well
while it loses chargebacks. Each critical signal configured in configs/risk.yaml
(`CriticalSignals`) that fires caps the account's tier at its `cap` (watch or at_risk), and
`at_risk_when` of them together make it at_risk, whatever the score. The score itself is left
as computed, so it stays explainable; the cap is a separate column and reason.

Signals, as of the start of as_of (events dated that day are not counted yet):

- **open_dispute**: a dispute in `disputes.open_statuses` (inquiries optional);
- **lost_dispute**: a dispute in `disputes.lost_statuses` opened within `days`;
- **failed_payments**: at least `count` failed charges within `days`;
- **old_case**: an open case of one of `priorities` opened more than `days` ago;
- **usage_collapse**: the usage trend down `drop_pct` % or more against its baseline.

Vectorised over account positions; texts are built only for the accounts a signal fires on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from revops.money import format_money
from revops.tasks.risk_book import NO_DAY, day_numbers
from revops.tasks.risk_config import TIERS, RiskConfig

TIER_RANK: dict[str, int] = {tier: rank for rank, tier in enumerate(TIERS)}
CAP_PREFIX = "capped at "


@dataclass(frozen=True)
class CriticalRow:
    """One critical signal over the book: where it fires, the tier it caps at, what it says."""

    name: str
    cap: str
    fired: np.ndarray  # bool per account
    text: np.ndarray  # object per account, "" where it does not fire


@dataclass(frozen=True)
class BillingEvents:
    """Charges and disputes with the account position of each (-1 when unlinked)."""

    charges: pd.DataFrame
    charge_pos: np.ndarray
    disputes: pd.DataFrame
    dispute_pos: np.ndarray


def critical_rows(
    *,
    n: int,
    day: int,
    billing: BillingEvents,
    cases: pd.DataFrame,
    case_pos: np.ndarray,
    usage_change_pct: np.ndarray,
    config: RiskConfig,
) -> list[CriticalRow]:
    """The configured critical signals of `n` accounts as of day number `day` (days since
    1970-01-01); none when `config.critical` is None."""
    critical = config.critical
    if critical is None:
        return []
    rows: list[CriticalRow] = []
    disputes, d_pos = billing.disputes, billing.dispute_pos
    d_day = day_numbers(disputes["created_at"])
    d_age = day - d_day
    d_seen = (d_pos >= 0) & (d_age >= 1)
    status = disputes["status"].astype(object).fillna("").to_numpy(dtype=object)
    if critical.open_dispute is not None:
        rule = critical.open_dispute
        is_open = d_seen & np.isin(status, config.disputes.open_statuses)
        if not rule.include_inquiries:
            is_open &= ~pd.Series(status).str.startswith("warning_").to_numpy(dtype=bool)
        amount = disputes["amount_minor"].to_numpy(dtype=np.int64)
        currency = disputes["currency"].to_numpy(dtype=object)
        first = _first_per_account(d_pos, is_open, -d_day, n)  # the oldest open dispute
        count = np.bincount(d_pos[is_open], minlength=n)

        def open_text(i: int) -> str:
            j = first[i]
            state = str(status[j]).removeprefix("warning_").replace("_", " ")
            noun = "inquiry" if str(status[j]).startswith("warning_") else "dispute"
            head = f"{noun} {state}: {format_money(int(amount[j]), currency[j])}"
            return head if count[i] == 1 else f"{count[i]} open disputes, oldest {head}"

        rows.append(_row("open_dispute", rule.cap, count > 0, open_text))
    if critical.lost_dispute is not None:
        rule = critical.lost_dispute
        is_lost = d_seen & np.isin(status, config.disputes.lost_statuses) & (d_age <= rule.days)
        latest = _first_per_account(d_pos, is_lost, d_day, n)  # the most recent loss
        count = np.bincount(d_pos[is_lost], minlength=n)
        opened = disputes["created_at"]

        def lost_text(i: int) -> str:
            when = f"{opened.iloc[latest[i]]:%Y-%m-%d}"
            head = "chargeback lost" if count[i] == 1 else f"{count[i]} chargebacks lost"
            return f"{head} (opened {when})" if count[i] == 1 else f"{head}, latest opened {when}"

        rows.append(_row("lost_dispute", rule.cap, count > 0, lost_text))
    if critical.failed_payments is not None:
        rule = critical.failed_payments
        charges, c_pos = billing.charges, billing.charge_pos
        age = day - day_numbers(charges["created_at"])
        failed = (
            (c_pos >= 0)
            & (age >= 1)
            & (age <= rule.days)
            & charges["status"].isin(config.payments.failed_statuses).to_numpy()
        )
        count = np.bincount(c_pos[failed], minlength=n)
        latest_age = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(latest_age, c_pos[failed], age[failed])
        rows.append(
            _row(
                "failed_payments",
                rule.cap,
                count >= rule.count,
                lambda i: (
                    f"{count[i]} failed payments in {rule.days} days, latest "
                    + ("yesterday" if latest_age[i] == 1 else f"{latest_age[i]} days ago")
                ),
            )
        )
    if critical.old_case is not None:
        rule = critical.old_case
        opened = day_numbers(cases["created_at"])
        closed_day = day_numbers(cases["closed_at"])
        is_closed = cases["is_closed"].to_numpy(dtype=bool)
        closed_later = is_closed & (closed_day != NO_DAY) & (closed_day >= day)
        age = day - opened
        old = (
            (case_pos >= 0)
            & (opened < day)
            & (~is_closed | closed_later)
            & cases["priority"].isin(rule.priorities).to_numpy()
            & (age > rule.days)
        )
        count = np.bincount(case_pos[old], minlength=n)
        oldest = _first_per_account(case_pos, old, -opened, n)
        priority = cases["priority"].to_numpy(dtype=object)

        def case_text(i: int) -> str:
            j = oldest[i]
            head = f"{priority[j]} case open {age[j]} days"
            return head if count[i] == 1 else f"{count[i]} urgent cases open, oldest {head}"

        rows.append(_row("old_case", rule.cap, count > 0, case_text))
    if critical.usage_collapse is not None:
        rule = critical.usage_collapse
        drop = -np.nan_to_num(usage_change_pct, nan=0.0)
        collapsed = drop >= rule.drop_pct
        rows.append(
            _row(
                "usage_collapse",
                rule.cap,
                collapsed,
                lambda i: f"usage collapsed {int(np.floor(drop[i] + 0.5))}% vs baseline",
            )
        )
    return rows


def apply_caps(
    tier: np.ndarray, rows: list[CriticalRow], at_risk_when: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The capped tier, the cap (tier name, "" when no signal fired) and the cap reason.

    The cap is the lowest cap of the signals that fired, at_risk when `at_risk_when` or more
    fired; the tier is the worse of the score's tier and the cap. The reason names the cap and
    every signal behind it ("capped at at_risk: chargeback lost (opened 2026-09-22); ...");
    "" when nothing fired.
    """
    n = len(tier)
    score_rank = pd.Series(tier, dtype=object).map(TIER_RANK).to_numpy(dtype=np.int64)
    if not rows:
        empty = np.full(n, "", dtype=object)
        return np.asarray(tier, dtype=object), empty, empty.copy()
    fired = np.column_stack([row.fired for row in rows])
    caps = np.array([TIER_RANK[row.cap] for row in rows], dtype=np.int64)
    healthy = TIER_RANK["healthy"]
    cap_rank = np.where(fired, caps[None, :], healthy).min(axis=1)
    many = fired.sum(axis=1) >= at_risk_when
    cap_rank = np.where(many, TIER_RANK["at_risk"], cap_rank)
    any_fired = fired.any(axis=1)
    final = np.minimum(score_rank, cap_rank)
    names = np.array(TIERS, dtype=object)
    cap = np.where(any_fired, names[cap_rank], "")
    texts = np.column_stack([row.text for row in rows])
    reason = np.full(n, "", dtype=object)
    for i in np.flatnonzero(any_fired):
        reason[i] = f"{CAP_PREFIX}{names[cap_rank[i]]}: " + "; ".join(t for t in texts[i] if t)
    return names[final], cap, reason


def _row(name: str, cap: str, fired: np.ndarray, build: Callable[[int], str]) -> CriticalRow:
    fired = np.asarray(fired, dtype=bool)
    text = np.full(len(fired), "", dtype=object)
    at = np.flatnonzero(fired)
    text[at] = [build(int(i)) for i in at]
    return CriticalRow(name=name, cap=cap, fired=fired, text=text)


def _first_per_account(pos: np.ndarray, mask: np.ndarray, key: np.ndarray, n: int) -> np.ndarray:
    """Per account position, the row index with the largest `key` among `mask`; -1 if none."""
    out = np.full(n, -1, dtype=np.int64)
    rows = np.flatnonzero(mask)
    if len(rows):
        order = rows[np.lexsort((rows, -np.asarray(key)[rows], pos[rows]))]
        first = order[np.r_[True, pos[order][1:] != pos[order][:-1]]]
        out[pos[first]] = first
    return out
