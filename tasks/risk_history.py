"""Health over time: what changed since the previous run (caps included), and a backtest
of the tiers against churn."""

from __future__ import annotations

import numpy as np
import pandas as pd

from revops.frames import require_columns
from revops.tasks.risk_book import take
from revops.tasks.risk_config import TIERS
from revops.tasks.risk_critical import CAP_PREFIX
from revops.tasks.risk_scoring import SUB_SCORE_COLUMNS, SUB_SCORE_LABELS


def explain_changes(current: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """`current` (a score_accounts result) with what changed since `previous`.

    Adds previous_score and score_change (Int64, NA when the account was not scored before),
    previous_tier, why_changed (the sub-scores that moved most, largest move first, e.g.
    "usage trend 85 -> 20; payments 100 -> 60"; "new account" when it was not scored before,
    "no previous run" when `previous` is None, "no change" when nothing moved) and
    newly_at_risk (at_risk now and not before; with no previous run, every at-risk account).
    Rows and their order are current's.
    """
    sub_columns = list(SUB_SCORE_COLUMNS.values())
    require_columns(current, "current scores", ["account_id", "score", "tier", *sub_columns])
    out = current.copy()
    n = len(out)
    cap_now = _caps(out)
    if previous is None:
        out["previous_cap"] = pd.array([""] * n, dtype="str")
        out["cap_change"] = pd.array(
            np.where(cap_now != "", "cap " + cap_now.astype(str) + " started", ""), dtype="str"
        )
        out["previous_score"] = pd.array([pd.NA] * n, dtype="Int64")
        out["previous_tier"] = pd.array([pd.NA] * n, dtype="str")
        out["score_change"] = pd.array([pd.NA] * n, dtype="Int64")
        out["why_changed"] = pd.array(["no previous run"] * n, dtype="str")
        out["newly_at_risk"] = (out["tier"] == "at_risk").to_numpy(dtype=bool)
        return out
    require_columns(previous, "previous scores", ["account_id", "score", "tier", *sub_columns])
    before = previous.drop_duplicates("account_id").set_index("account_id")
    pos = before.index.get_indexer(out["account_id"])
    known = pos >= 0
    prev_score = take(_floats(before["score"]), pos, np.nan)
    prev_tier = take(before["tier"].to_numpy(dtype=object), pos, None)
    now = _floats(out[sub_columns])
    then = take(_floats(before[sub_columns]), pos, np.nan)
    moved = np.abs(now - then)
    order = np.argsort(-np.nan_to_num(moved, nan=0.0), axis=1, kind="stable")
    rows = np.arange(n)[:, None]
    top_moved = moved[rows, order]
    labels = np.array([SUB_SCORE_LABELS[c] for c in sub_columns], dtype=object)[order]
    now_sorted, then_sorted = now[rows, order], then[rows, order]
    score_now = _floats(out["score"])
    tier_now = out["tier"].to_numpy(dtype=object)
    cap_then = take(_caps(before.reset_index()), pos, "")
    cap_change = _cap_changes(cap_now, np.where(known, cap_then, ""))
    why = []
    for i in range(n):
        if not known[i]:
            why.append("new account" + (f"; {cap_change[i]}" if cap_change[i] else ""))
            continue
        parts = [cap_change[i]] if cap_change[i] else []
        parts += [
            f"{labels[i, j]} {then_sorted[i, j]:.0f} -> {now_sorted[i, j]:.0f}"
            for j in range(min(3, len(sub_columns)))
            if top_moved[i, j] > 0
        ]
        if parts:
            why.append("; ".join(parts))
        elif score_now[i] != prev_score[i] or tier_now[i] != prev_tier[i]:
            why.append("weights or thresholds changed")
        else:
            why.append("no change")
    out["previous_cap"] = pd.array(np.where(known, cap_then, ""), dtype="str")
    out["cap_change"] = pd.array(cap_change, dtype="str")
    out["previous_score"] = pd.array(prev_score, dtype="Float64").astype("Int64")
    out["previous_tier"] = pd.array(prev_tier, dtype="str")
    out["score_change"] = (out["score"].astype("Int64") - out["previous_score"]).astype("Int64")
    out["why_changed"] = pd.array(why, dtype="str")
    out["newly_at_risk"] = (tier_now == "at_risk") & (prev_tier != "at_risk")
    return out


def _caps(scores: pd.DataFrame) -> np.ndarray:
    """Each row's cap: the `cap` column, else read from the reasons (stored history keeps
    the reasons, which name the cap); "" when uncapped."""
    if "cap" in scores.columns:
        return scores["cap"].astype(object).fillna("").to_numpy(dtype=object)
    if "reasons" not in scores.columns:
        return np.full(len(scores), "", dtype=object)
    named = scores["reasons"].astype(object).fillna("").astype(str)
    found = named.str.extract(rf"(?:^|; ){CAP_PREFIX}(at_risk|watch):", expand=False)
    return found.fillna("").to_numpy(dtype=object)


def _cap_changes(now: np.ndarray, then: np.ndarray) -> np.ndarray:
    """ "cap at_risk started", "cap watch ended", "cap watch -> at_risk"; "" when the same."""
    now, then = now.astype(str), then.astype(str)
    return np.select(
        [now == then, then == "", now == ""],
        ["", "cap " + now + " started", "cap " + then + " ended"],
        default="cap " + then + " -> " + now,
    ).astype(object)


def backtest(snapshots: pd.DataFrame, churned: set[str] | pd.Series) -> pd.DataFrame:
    """Churn by tier: did the accounts the score flagged churn more than the others?

    Method: each row of `snapshots` (score_accounts results stacked, with an `as_of` column)
    is one observation "this account was in this tier on that date"; duplicates of an
    (account_id, as_of) pair count once. An observation churned when its account is in
    `churned` (a set of account ids, a Series of ids, or a boolean Series indexed by account
    id). With a single as_of, `accounts` is the number of distinct accounts in the tier; with
    several, an account counts once per date, in the tier of that date. Use snapshots taken
    before the churn you measure: a snapshot of an account that has already churned (no
    contract, no usage) would leak the answer.

    Returns one row per tier (at_risk, watch, healthy, then any other tier seen): tier,
    accounts, churned, churn_rate (churned / accounts, NA when no accounts) and lift
    (churn_rate over the churn rate of all observations, NA when nobody churned).
    """
    require_columns(snapshots, "snapshots", ["account_id", "as_of", "tier"])
    if isinstance(churned, pd.Series):
        ids = set(churned.index[churned.to_numpy(dtype=bool)] if churned.dtype == bool else churned)
    else:
        ids = set(churned)
    obs = snapshots.drop_duplicates(["account_id", "as_of"])[["account_id", "tier"]]
    flags = obs["account_id"].isin(ids).to_numpy()
    tiers = [*TIERS, *sorted(set(obs["tier"].dropna()) - set(TIERS))]
    counts = obs.groupby("tier").size().reindex(tiers, fill_value=0)
    hits = pd.Series(flags, index=obs.index).groupby(obs["tier"]).sum().reindex(tiers, fill_value=0)
    accounts = counts.to_numpy(dtype=np.int64)
    churn = hits.to_numpy(dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(accounts > 0, churn / np.maximum(accounts, 1), np.nan)
        overall = flags.mean() if len(flags) else np.nan
        lift = rate / overall if overall and overall > 0 else np.full(len(tiers), np.nan)
    return pd.DataFrame(
        {
            "tier": pd.array(tiers, dtype="str"),
            "accounts": accounts,
            "churned": churn,
            "churn_rate": np.round(rate, 4),
            "lift": np.round(lift, 2),
        }
    )


def _floats(values: pd.Series | pd.DataFrame) -> np.ndarray:
    return values.to_numpy(dtype=np.float64, na_value=np.nan)
