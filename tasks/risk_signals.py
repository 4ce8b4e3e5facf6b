"""The six health signals as vectorised arrays over the book's account positions.

Each `*_signals` function reads one canonical frame and returns its raw counts and its
sub-score from 0 to 100 (100 = healthy); how each is computed is described in
tasks/risk_scoring.py and configs/risk.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from revops.money import ISO_4217_EXPONENTS
from revops.tasks.matching import link_customers
from revops.tasks.risk_book import NO_DAY, Book, day_numbers, take
from revops.tasks.risk_config import RiskConfig


@dataclass(frozen=True)
class Windows:
    """Per-account row counts and sums of one metric in the recent and baseline windows."""

    recent_n: np.ndarray
    recent_sum: np.ndarray
    base_n: np.ndarray
    base_sum: np.ndarray

    @property
    def any_rows(self) -> np.ndarray:
        return (self.recent_n + self.base_n) > 0

    @property
    def recent_avg(self) -> np.ndarray:
        """Daily average over the recent window; 0 when only the baseline has rows."""
        with np.errstate(invalid="ignore", divide="ignore"):
            avg = self.recent_sum / self.recent_n
        return np.where(self.recent_n > 0, avg, np.where(self.base_n > 0, 0.0, np.nan))

    @property
    def base_avg(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.base_n > 0, self.base_sum / self.base_n, np.nan)


@dataclass(frozen=True)
class UsageSignals:
    trend: Windows
    seats: Windows  # the seat metric's windows (the same object when the metrics agree)
    change_pct: np.ndarray  # NaN when unknown
    score: np.ndarray


def _window_sums(usage: pd.DataFrame, metric: str, book: Book) -> Windows:
    n, p = book.n, book.params
    recent_days = p["recent_days"].astype(np.int64)
    horizon = int((recent_days + p["baseline_days"].astype(np.int64)).max()) if n else 0
    offset = book.day - usage["date"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    keep = (offset >= 1) & (offset <= horizon)
    keep &= (usage["metric"] == metric).to_numpy(dtype=bool)
    # Accounts looked up once each, not once per row (tens of millions of rows as text).
    codes, accounts = pd.factorize(usage["account_id"])
    pos = np.append(book.index.get_indexer(accounts), -1)[codes[keep]]
    known = pos >= 0
    pos = pos[known]
    offset = offset[keep][known]
    quantity = usage["quantity"].to_numpy(dtype=np.float64)[keep][known]
    account_recent = recent_days[pos]
    recent = offset <= account_recent
    base = ~recent & (offset <= account_recent + p["baseline_days"].astype(np.int64)[pos])
    return Windows(
        recent_n=np.bincount(pos[recent], minlength=n),
        recent_sum=np.bincount(pos[recent], weights=quantity[recent], minlength=n),
        base_n=np.bincount(pos[base], minlength=n),
        base_sum=np.bincount(pos[base], weights=quantity[base], minlength=n),
    )


def usage_signals(usage: pd.DataFrame, book: Book, config: RiskConfig) -> UsageSignals:
    p = book.params
    trend = _window_sums(usage, config.usage.metric, book)
    seats = (
        trend
        if config.seat_utilisation.metric == config.usage.metric
        else _window_sums(usage, config.seat_utilisation.metric, book)
    )
    recent, base = trend.recent_avg, trend.base_avg
    with np.errstate(invalid="ignore", divide="ignore"):
        change = np.where(base > 0, (recent / base - 1.0) * 100.0, np.nan)
    drop = -change
    ignore, zero = p["ignore_drop_pct"], p["zero_score_drop_pct"]
    by_drop = 100.0 * np.clip((zero - drop) / (zero - ignore), 0.0, 1.0)
    score = np.where(
        trend.base_n == 0,
        p["usage_neutral"],
        np.where(np.isnan(change), 100.0, by_drop),  # a zero baseline has nothing to lose
    )
    return UsageSignals(trend=trend, seats=seats, change_pct=change, score=score)


@dataclass(frozen=True)
class ContractSignals:
    has_contract: np.ndarray
    seats: np.ndarray  # contracted seats on active contracts
    days_to_end: np.ndarray  # NO_DAY when no contract or open-ended
    auto_renew: np.ndarray
    renewal_score: np.ndarray


def contract_signals(contracts: pd.DataFrame, book: Book, config: RiskConfig) -> ContractSignals:
    n, p, day = book.n, book.params, book.day
    pos = book.index.get_indexer(contracts["account_id"])
    start = contracts["start_date"].to_numpy(dtype="datetime64[D]")
    end = contracts["end_date"].to_numpy(dtype="datetime64[D]")
    open_end = np.isnat(end)
    end_day = np.where(open_end, NO_DAY, end.astype(np.int64))
    active = contracts["status"].isin(config.active_contract_statuses).to_numpy() & (pos >= 0)
    running = active & (open_end | (end_day >= day))
    current = running & (start.astype(np.int64) <= day)
    quantity = contracts["quantity"].to_numpy(dtype=np.int64)
    has_contract = np.bincount(pos[current], minlength=n) > 0
    seats = np.bincount(pos[current], weights=quantity[current], minlength=n).astype(np.int64)
    # The term runs to the latest end of the account's active contracts, a renewal signed to
    # start later included; an open-ended one never ends.
    evergreen = np.bincount(pos[running & open_end], minlength=n) > 0
    dated = running & ~open_end
    horizon = np.full(n, NO_DAY, dtype=np.int64)
    np.maximum.at(horizon, pos[dated], end_day[dated])
    at_horizon = dated & (end_day == take(horizon, pos, NO_DAY))
    renews = contracts["auto_renew"].to_numpy(dtype=bool)
    auto_renew = np.bincount(pos[at_horizon & renews], minlength=n) > 0
    ends = has_contract & ~evergreen & (horizon != NO_DAY)
    days_to_end = np.where(ends, horizon - day, NO_DAY)
    floor = np.where(
        auto_renew, p["end_score_with_auto_renew"], p["end_score_without_auto_renew"]
    ).astype(np.float64)
    fraction = np.clip(days_to_end / p["renewal_window_days"], 0.0, 1.0)
    score = np.where(
        ~has_contract,
        p["renewal_neutral"],
        np.where(ends, floor + (100.0 - floor) * fraction, 100.0),
    )
    return ContractSignals(
        has_contract=has_contract,
        seats=seats,
        days_to_end=days_to_end,
        auto_renew=auto_renew,
        renewal_score=score,
    )


def utilisation_pct(usage: UsageSignals, contracts: ContractSignals) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = usage.seats.recent_avg / contracts.seats * 100.0
    known = contracts.has_contract & (contracts.seats > 0) & usage.seats.any_rows
    return np.where(known, pct, np.nan)


def seat_score(
    usage: UsageSignals, contracts: ContractSignals, p: dict[str, np.ndarray]
) -> np.ndarray:
    pct = utilisation_pct(usage, contracts)
    healthy, zero = p["healthy_pct"], p["zero_score_pct"]
    by_pct = 100.0 * np.clip((pct - zero) / (healthy - zero), 0.0, 1.0)
    return np.where(np.isnan(pct), p["seats_neutral"], by_pct)


def billing_accounts(
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    charges: pd.DataFrame,
    disputes: pd.DataFrame,
    book: Book,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Account position of each charge and dispute (-1 when unlinked), and which accounts
    have a Stripe customer at all."""
    charge_customers = charges["customer_id"].to_numpy(dtype=object)
    by_charge = pd.Index(charges["charge_id"]).get_indexer(disputes["charge_id"])
    dispute_customers = disputes["customer_id"].to_numpy(dtype=object)
    from_charge = take(charge_customers, by_charge, None)
    dispute_customers = np.where(pd.isna(dispute_customers), from_charge, dispute_customers)
    seen = pd.Series(np.concatenate([charge_customers, dispute_customers]), dtype="str")
    links = link_customers(customers, accounts, pd.Index(seen.dropna().unique(), dtype="str"))
    link_account = book.index.get_indexer(links["account_id"])
    by_customer = pd.Index(links["customer_id"])

    def account_of(customer_ids: np.ndarray) -> np.ndarray:
        at = by_customer.get_indexer(pd.Series(customer_ids, dtype="str"))
        return take(link_account, at, -1)

    linked = accounts["stripe_customer_id"].notna().to_numpy().copy()
    linked[link_account[link_account >= 0]] = True
    return account_of(charge_customers), account_of(dispute_customers), linked


@dataclass(frozen=True)
class DisputeSignals:
    open_count: np.ndarray
    lost_count: np.ndarray
    largest_minor: np.ndarray  # object: int or None
    largest_currency: np.ndarray  # object: str or None
    largest_status: np.ndarray  # object: str or None
    penalty_open: np.ndarray  # open and large-amount penalties
    penalty_lost: np.ndarray
    score: np.ndarray


def dispute_signals(
    disputes: pd.DataFrame, pos: np.ndarray, book: Book, config: RiskConfig
) -> DisputeSignals:
    n, p = book.n, book.params
    age = book.day - day_numbers(disputes["created_at"])
    before = (pos >= 0) & (age >= 1)
    status = disputes["status"]
    is_open = before & status.isin(config.disputes.open_statuses).to_numpy()
    is_lost = (
        before
        & status.isin(config.disputes.lost_statuses).to_numpy()
        & (age <= take(p["dispute_lookback_days"], pos, 0))
    )
    open_count = np.bincount(pos[is_open], minlength=n)
    lost_count = np.bincount(pos[is_lost], minlength=n)

    largest_minor = np.full(n, None, dtype=object)
    largest_currency = np.full(n, None, dtype=object)
    largest_status = np.full(n, None, dtype=object)
    large = np.zeros(n, dtype=bool)
    rows = np.flatnonzero(is_open)
    if len(rows):
        amount = disputes["amount_minor"].to_numpy(dtype=np.int64)[rows]
        currency = disputes["currency"].to_numpy(dtype=object)[rows]
        exponents = pd.Series(currency).map(ISO_4217_EXPONENTS).fillna(2).to_numpy(np.int64)
        # Ranked in major units, only to pick which dispute to show: amounts in different
        # currencies are never added or converted.
        major = amount / np.power(10.0, exponents)
        order = np.lexsort((rows, -major, pos[rows]))
        first = order[np.r_[True, pos[rows][order][1:] != pos[rows][order][:-1]]]
        accounts_at = pos[rows][first]
        largest_minor[accounts_at] = amount[first].tolist()
        largest_currency[accounts_at] = currency[first]
        largest_status[accounts_at] = disputes["status"].to_numpy(dtype=object)[rows][first]
        thresholds = (
            pd.DataFrame(
                {"segment_key": book.segment_keys[accounts_at], "currency": currency[first]}
            )
            .merge(book.large_amounts, on=["segment_key", "currency"], how="left")["threshold"]
            .to_numpy(dtype=np.float64)
        )
        large[accounts_at] = amount[first] >= thresholds  # NaN (no threshold) is never large
    penalty_open = p["open_penalty"] * open_count + p["large_penalty"] * large
    penalty_lost = p["lost_penalty"] * lost_count
    score = 100.0 - np.minimum(100.0, penalty_open + penalty_lost)
    return DisputeSignals(
        open_count=open_count,
        lost_count=lost_count,
        largest_minor=largest_minor,
        largest_currency=largest_currency,
        largest_status=largest_status,
        penalty_open=penalty_open.astype(np.float64),
        penalty_lost=penalty_lost.astype(np.float64),
        score=score,
    )


@dataclass(frozen=True)
class PaymentSignals:
    count: np.ndarray
    latest_days: np.ndarray  # days since the latest failure, NO_DAY when none
    score: np.ndarray


def payment_signals(
    charges: pd.DataFrame, pos: np.ndarray, book: Book, config: RiskConfig
) -> PaymentSignals:
    n, p = book.n, book.params
    age = book.day - day_numbers(charges["created_at"])
    failed = (
        (pos >= 0)
        & (age >= 1)
        & (age <= take(p["payment_lookback_days"], pos, 0))
        & charges["status"].isin(config.payments.failed_statuses).to_numpy()
    )
    pos, age = pos[failed], age[failed]
    weight = np.where(age <= p["payment_recent_days"][pos], 1.0, p["older_failure_factor"][pos])
    count = np.bincount(pos, minlength=n)
    weighted = np.bincount(pos, weights=weight, minlength=n)
    latest = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(latest, pos, age)
    score = 100.0 - np.minimum(100.0, p["penalty_per_failure"] * weighted)
    return PaymentSignals(count=count, latest_days=np.where(count > 0, latest, NO_DAY), score=score)


@dataclass(frozen=True)
class CaseSignals:
    open_count: np.ndarray
    high_count: np.ndarray
    oldest_days: np.ndarray  # NO_DAY when none open
    score: np.ndarray


def case_signals(cases: pd.DataFrame, book: Book, config: RiskConfig) -> CaseSignals:
    n, p = book.n, book.params
    pos = book.index.get_indexer(cases["account_id"])
    opened = day_numbers(cases["created_at"])
    closed_day = day_numbers(cases["closed_at"])
    is_closed = cases["is_closed"].to_numpy(dtype=bool)
    # A case closed on or after as_of was still open on it (matters for back-dated runs).
    closed_later = is_closed & (closed_day != NO_DAY) & (closed_day >= book.day)
    is_open = (pos >= 0) & (opened < book.day) & (~is_closed | closed_later)
    high = is_open & cases["priority"].isin(config.cases.high_priorities).to_numpy()
    open_count = np.bincount(pos[is_open], minlength=n)
    high_count = np.bincount(pos[high], minlength=n)
    oldest = np.full(n, NO_DAY, dtype=np.int64)
    np.maximum.at(oldest, pos[is_open], book.day - opened[is_open])
    penalty = (
        p["penalty_per_case"] * (open_count - high_count)
        + p["penalty_per_high_priority_case"] * high_count
        + p["old_case_penalty"] * ((open_count > 0) & (oldest > p["old_case_days"]))
    )
    return CaseSignals(
        open_count=open_count,
        high_count=high_count,
        oldest_days=oldest,
        score=100.0 - np.minimum(100.0, penalty),
    )
