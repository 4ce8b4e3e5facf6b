"""Health reasons: why each account scored what it did, worst first, in plain words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from revops.money import format_money
from revops.tasks.risk_book import EPSILON, NO_DAY, Book
from revops.tasks.risk_config import SIGNALS, RiskConfig
from revops.tasks.risk_signals import (
    CaseSignals,
    ContractSignals,
    DisputeSignals,
    PaymentSignals,
    UsageSignals,
    utilisation_pct,
)


@dataclass(frozen=True)
class ReasonRule:
    """One named reason over the book: where it applies, the score points it costs there, and
    what it says. A data gap always qualifies and is listed in `data_gaps`; any other rule
    only where it costs points."""

    name: str
    applies: np.ndarray  # bool per account
    cost: np.ndarray  # float per account: weight x sub-score points lost
    text: np.ndarray  # object per account, "" where it does not apply
    data_gap: bool = False

    @property
    def impact(self) -> np.ndarray:
        """The cost where the rule qualifies, -inf elsewhere (for ranking)."""
        qualifies = self.applies & (self.data_gap | (self.cost > EPSILON))
        return np.where(qualifies, self.cost, -np.inf)


def rule(
    name: str,
    applies: np.ndarray,
    cost: np.ndarray,
    build: Callable[[int], str],
    *,
    data_gap: bool = False,
) -> ReasonRule:
    """A ReasonRule whose texts `build(i)` makes for the accounts it applies to."""
    return ReasonRule(name, applies, np.asarray(cost, np.float64), _texts(applies, build), data_gap)


def explain(
    book: Book,
    config: RiskConfig,
    sub: dict[str, np.ndarray],
    usage: UsageSignals,
    contracts: ContractSignals,
    disputes: DisputeSignals,
    payments: PaymentSignals,
    cases: CaseSignals,
    linked: np.ndarray,
) -> tuple[list[str], list[str]]:
    """Top reasons (worst first, at most top_reasons) and data gaps per account.

    A reason's weight is the score points it costs: its signal's weight times what its
    sub-score lost (disputes split between open and lost in proportion to their penalties).
    Equal costs keep the rules' order, data gaps first.
    """
    lost = {signal: book.params[f"w_{signal}"] * (100 - sub[signal]) for signal in SIGNALS}
    rules = [
        *gap_rules(book, config, lost, usage, contracts, linked),
        *signal_rules(book, config, sub, lost, usage, contracts, disputes, payments, cases, linked),
    ]
    n, top = book.n, book.params["top_reasons"].astype(np.int64)
    impact = np.column_stack([r.impact for r in rules])
    text = np.column_stack([r.text for r in rules])
    order = np.argsort(-impact, axis=1, kind="stable")
    rows = np.arange(n)
    picked = []
    for rank in range(int(top.max()) if n else 0):
        column = order[:, rank]
        usable = (impact[rows, column] > -np.inf) & (rank < top)
        picked.append(np.where(usable, text[rows, column], ""))
    reasons = (
        ["; ".join(part for part in parts if part) for parts in zip(*picked, strict=True)]
        if picked
        else [""] * n
    )
    gap_text = np.column_stack([r.text for r in rules if r.data_gap])
    gaps = ["; ".join(part for part in parts if part) for parts in gap_text]
    return reasons, gaps


def gap_rules(
    book: Book,
    config: RiskConfig,
    lost: dict[str, np.ndarray],
    usage: UsageSignals,
    contracts: ContractSignals,
    linked: np.ndarray,
) -> list[ReasonRule]:
    """Missing data, said rather than scored healthy."""
    p = book.params
    recent, base = p["recent_days"].astype(np.int64), p["baseline_days"].astype(np.int64)
    trend = usage.trend
    same_metric = usage.seats is usage.trend
    no_seats = contracts.has_contract & (contracts.seats == 0)
    seats_blind = contracts.has_contract & ~no_seats & ~usage.seats.any_rows
    no_usage = ~trend.any_rows
    return [
        rule(
            "no_usage",
            no_usage,
            lost["usage_trend"] + np.where(same_metric & seats_blind, lost["seat_utilisation"], 0),
            lambda i: f"no usage data in the last {recent[i] + base[i]} days",
            data_gap=True,
        ),
        rule(
            "no_baseline",
            trend.any_rows & (trend.base_n == 0),
            lost["usage_trend"],
            lambda i: f"no usage baseline (no data {recent[i]}-{recent[i] + base[i]} days ago)",
            data_gap=True,
        ),
        rule(
            "no_contract",
            ~contracts.has_contract,
            lost["seat_utilisation"] + lost["renewal"],
            lambda i: "no active contract",
            data_gap=True,
        ),
        rule(
            "no_seats",
            no_seats,
            lost["seat_utilisation"],
            lambda i: "no seats on the active contract",
            data_gap=True,
        ),
        rule(
            "no_seat_usage",
            ~same_metric & seats_blind,
            lost["seat_utilisation"],
            lambda i: (
                f"no {config.seat_utilisation.metric} data in the last {recent[i] + base[i]} days"
            ),
            data_gap=True,
        ),
        rule(
            "no_stripe_customer",
            ~linked,
            lost["disputes"] + lost["payments"],
            lambda i: "no Stripe customer linked",
            data_gap=True,
        ),
    ]


def signal_rules(
    book: Book,
    config: RiskConfig,
    sub: dict[str, np.ndarray],
    lost: dict[str, np.ndarray],
    usage: UsageSignals,
    contracts: ContractSignals,
    disputes: DisputeSignals,
    payments: PaymentSignals,
    cases: CaseSignals,
    linked: np.ndarray,
) -> list[ReasonRule]:
    """What the known signals cost."""
    p = book.params
    recent = p["recent_days"].astype(np.int64)
    trend = usage.trend
    drop = np.floor(0.5 - np.nan_to_num(usage.change_pct, nan=0.0)).astype(np.int64)
    utilisation = utilisation_pct(usage, contracts)
    use_pct = np.floor(np.nan_to_num(utilisation) + 0.5).astype(np.int64)
    dispute_penalty = disputes.penalty_open + disputes.penalty_lost
    with np.errstate(invalid="ignore", divide="ignore"):
        open_share = np.where(dispute_penalty > 0, disputes.penalty_open / dispute_penalty, 0.0)
    high_label = (
        config.cases.high_priorities[0] if len(config.cases.high_priorities) == 1 else "high"
    )
    return [
        rule(
            "usage_drop",
            (trend.base_n > 0) & (sub["usage_trend"] < 100),
            lost["usage_trend"],
            lambda i: _usage_text(drop[i], trend.recent_n[i], recent[i]),
        ),
        rule(
            "low_seat_use",
            ~np.isnan(utilisation) & (sub["seat_utilisation"] < 100),
            lost["seat_utilisation"],
            lambda i: f"only {use_pct[i]}% of {_plural(contracts.seats[i], 'seat')} used",
        ),
        rule(
            "open_disputes",
            disputes.open_count > 0,
            lost["disputes"] * open_share,
            lambda i: _open_dispute_text(
                disputes.open_count[i],
                disputes.largest_minor[i],
                disputes.largest_currency[i],
                disputes.largest_status[i],
            ),
        ),
        rule(
            "lost_disputes",
            disputes.lost_count > 0,
            lost["disputes"] * (1.0 - open_share),
            lambda i: (
                f"{_plural(disputes.lost_count[i], 'dispute')} lost in "
                f"{int(p['dispute_lookback_days'][i])} days"
            ),
        ),
        rule(
            "failed_payments",
            linked & (payments.count > 0) & (sub["payments"] < 100),
            lost["payments"],
            lambda i: _payment_text(
                payments.count[i], payments.latest_days[i], p["payment_lookback_days"][i]
            ),
        ),
        rule(
            "open_cases",
            (cases.open_count > 0) & (sub["cases"] < 100),
            lost["cases"],
            lambda i: _case_text(
                cases.open_count[i], cases.high_count[i], cases.oldest_days[i], high_label
            ),
        ),
        rule(
            "renewal",
            contracts.has_contract & (contracts.days_to_end != NO_DAY) & (sub["renewal"] < 100),
            lost["renewal"],
            lambda i: _renewal_text(contracts.days_to_end[i], contracts.auto_renew[i]),
        ),
    ]


def _texts(mask: np.ndarray, build: Callable[[int], str]) -> np.ndarray:
    """Reason texts of the accounts `mask` selects, "" elsewhere."""
    out = np.full(len(mask), "", dtype=object)
    rows = np.flatnonzero(mask)
    out[rows] = [build(i) for i in rows]
    return out


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _usage_text(drop_pct: int, recent_rows: int, recent_days: int) -> str:
    if recent_rows == 0:
        return f"usage down 100% vs baseline (none in the last {recent_days} days)"
    return f"usage down {drop_pct}% vs baseline"


def _open_dispute_text(count: int, minor: int, currency: str, status: str) -> str:
    money = format_money(minor, currency)
    noun = "inquiry" if status.startswith("warning_") else "dispute"
    state = status.removeprefix("warning_").replace("_", " ")
    if count == 1:
        return f"{noun} {state}: {money}"
    return f"{count} open disputes, largest {money} ({noun} {state})"


def _payment_text(count: int, latest_days: int, lookback_days: float) -> str:
    when = "yesterday" if latest_days == 1 else f"{latest_days} days ago"
    head = f"{_plural(count, 'failed payment')} in {int(lookback_days)} days"
    return f"{head}, {when}" if count == 1 else f"{head}, latest {when}"


def _case_text(count: int, high: int, oldest_days: int, high_label: str) -> str:
    if count == 1:
        return f"1 open case, {_plural(oldest_days, 'day')} old" + (
            f" ({high_label})" if high else ""
        )
    text = f"{count} open cases, oldest {_plural(oldest_days, 'day')}"
    return text + (f" ({high} {high_label})" if high else "")


def _renewal_text(days: int, auto_renew: bool) -> str:
    when = "today" if days == 0 else f"in {_plural(days, 'day')}"
    return f"contract ends {when}" + (" (auto-renews)" if auto_renew else " without auto-renew")
