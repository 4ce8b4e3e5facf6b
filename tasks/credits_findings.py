"""Money given back in the findings and totals: net billed, `credited`, `refunded`.

Pure pandas; the rule is the README's "Credits and refunds".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from revops.frames import DATE
from revops.money import format_money
from revops.tasks.credits_placing import GivenBack


def net_of_credits(periods: pd.DataFrame, given: GivenBack) -> pd.DataFrame:
    """Periods with `gross_billed_minor` (as invoiced), `credit_minor`, and `billed_minor` net."""
    at = pd.Index(periods["pkey"]).get_indexer(given.credited["pkey"])
    credit = np.zeros(len(periods), dtype=np.int64)
    np.add.at(credit, at[at >= 0], given.credited["amount_minor"].to_numpy(dtype=np.int64)[at >= 0])
    gross = periods["billed_minor"].to_numpy(dtype=np.int64)
    return periods.assign(
        gross_billed_minor=gross, credit_minor=credit, billed_minor=gross - credit
    )


ELSEWHERE_CODES = ("unexpected_item", "billed_outside_contract", "unmatched_invoice")


def net_elsewhere(lines: pd.DataFrame, given: GivenBack) -> pd.DataFrame:
    """Lines that bill no contract period with `net` less the credits placed on them."""
    if given.elsewhere.empty or lines.empty:
        return lines
    credit = given.elsewhere.groupby("line_pos")["amount_minor"].sum()
    taken = credit.reindex(lines["line_pos"].to_numpy()).fillna(0).to_numpy(dtype=np.int64)
    return lines.assign(net=lines["net"].to_numpy(dtype=np.int64) - taken)


def _credited_elsewhere(frame: pd.DataFrame, book: object, given: GivenBack) -> pd.DataFrame:
    """Findings on lines of no contract period, with the credits on their invoice named.

    The rule (README): a credit on such a line reduces that line's billed amount (the finding
    shows it net and names the credit); one that reverses it whole leaves nothing billed in
    error, so the finding goes (a void plus its replacement is clean the same way).
    """
    on = given.elsewhere
    if on.empty or frame.empty:
        return frame
    invoice = book.invoice_ids(on["inv_pos"].to_numpy(dtype=np.int64))
    labels = pd.Series(on["label"].to_numpy(dtype=object), index=invoice)
    named = labels.groupby(level=0).agg(lambda s: ", ".join(sorted(set(s))))
    hit = frame["code"].isin(ELSEWHERE_CODES).to_numpy() & frame["invoice_id"].isin(named.index)
    if not hit.any():
        return frame
    frame = frame.copy()
    billed = frame["billed_minor"].astype("Int64")
    gone = hit & billed.fillna(0).le(0).to_numpy(dtype=bool)
    note = frame.loc[hit, "invoice_id"].map(named)
    frame.loc[hit, "detail"] = frame.loc[hit, "detail"].astype(str) + "; net of " + note
    return frame[~gone].reset_index(drop=True)


def pair_given_back(
    per_invoice: pd.DataFrame, given: GivenBack, assigned: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Credited and refunded per (contract period, invoice) row of `per_invoice`.

    The same money the findings use: credits placed on the invoice's lines of that period,
    and the refund no credit note covers (on the period of the invoice's first placed line).
    """
    n_inv = 1 + max(
        int(per_invoice["inv_pos"].max()) if len(per_invoice) else 0,
        int(assigned["inv_pos"].max()) if len(assigned) else 0,
    )
    pairs = pd.Index(per_invoice["pkey"].to_numpy() * n_inv + per_invoice["inv_pos"].to_numpy())
    out = []
    line_inv = pd.Series(
        assigned["inv_pos"].to_numpy(dtype=np.int64), index=assigned["line_pos"].to_numpy()
    )
    for frame, inv in (
        (given.credited, line_inv.reindex(given.credited["line_pos"].to_numpy()).to_numpy()),
        (given.refunded, given.refunded["inv_pos"].to_numpy()),
    ):
        total = np.zeros(len(per_invoice), dtype=np.int64)
        if len(frame):
            keys = frame["pkey"].to_numpy(dtype=np.int64) * n_inv + inv.astype(np.int64)
            at = pairs.get_indexer(keys)
            amounts = frame["amount_minor"].to_numpy(dtype=np.int64)
            np.add.at(total, at[at >= 0], amounts[at >= 0])
        out.append(total)
    return out[0], out[1]


def with_credit_findings(
    frames: list[pd.DataFrame], book: object, periods: pd.DataFrame, given: GivenBack
) -> list[pd.DataFrame]:
    """Findings frames with credits named, `credited` told apart, and `refunded` added.

    The rule (README, "Credits and refunds"): a period billed right (within tolerance) whose
    credits leave it short is `credited`, not `underbilled`: money given back against a
    correct invoice. A period already under-billed before its credits stays `underbilled`,
    and an over-billed one `overbilled`, with the credits in the detail; a credit that
    brings an over-billed period back to its expected amount leaves it clean.
    """
    labels = given.credited.groupby("pkey")["label"].agg(lambda s: ", ".join(sorted(set(s))))
    credit = periods.set_index("pkey")
    out = []
    for frame in frames:
        if frame.empty or "pkey" not in frame:
            out.append(frame)
            continue
        keyed = frame["pkey"].isin(labels.index) & frame["code"].isin(["underbilled", "overbilled"])
        if keyed.any():
            frame = frame.copy()
            rows = frame.loc[keyed, "pkey"].to_numpy()
            gross = credit["gross_billed_minor"].reindex(rows).to_numpy(dtype=np.int64)
            expected = credit["expected_minor"].reindex(rows).to_numpy(dtype=np.int64)
            contract = credit["contract"].reindex(rows).to_numpy(dtype=np.int64)
            tolerance = book.tolerance(book.terms.currency[contract])
            short = expected - gross
            rel = book.config.tolerance.relative_bp
            billed_right = ~((short > tolerance) & (short * 10_000 > rel * expected))
            under = (frame.loc[keyed, "code"] == "underbilled").to_numpy()
            codes = frame.loc[keyed, "code"].to_numpy(dtype=object)
            codes[under & billed_right] = "credited"
            frame.loc[keyed, "code"] = codes
            amounts = credit["credit_minor"].reindex(rows).to_numpy(dtype=np.int64)
            currency = frame.loc[keyed, "currency"].to_numpy(dtype=object)
            frame.loc[keyed, "detail"] = [
                (
                    f"invoiced {format_money(g, c)} as expected, then credited "
                    f"{format_money(a, c)}: {labels[k]}"
                    if code == "credited"
                    else f"{d}; credited {format_money(a, c)} (invoiced {format_money(g, c)}): "
                    f"{labels[k]}"
                )
                for code, d, g, a, c, k in zip(
                    codes,
                    frame.loc[keyed, "detail"],
                    gross,
                    amounts,
                    currency,
                    rows,
                    strict=True,
                )
            ]
            frame.loc[keyed, "finding_key"] = (
                frame.loc[keyed, "code"]
                + ":"
                + frame.loc[keyed, "finding_key"].str.split(":", n=1).str[1]
            )
        out.append(frame)
    out.append(_refunded_rows(book, periods, given.refunded))
    return [_credited_elsewhere(frame, book, given) for frame in out]


def _refunded_rows(book: object, periods: pd.DataFrame, refunded: pd.DataFrame) -> pd.DataFrame:
    """`refunded` findings: per invoice, the period it bills and the uncovered refund."""
    at = pd.Index(periods["pkey"]).get_indexer(refunded["pkey"])
    keep = at >= 0
    refunded, at = refunded[keep], at[keep]
    contract = periods["contract"].to_numpy(dtype=np.int64)[at]
    billed = periods["billed_minor"].to_numpy(dtype=np.int64)[at]
    amount = refunded["amount_minor"].to_numpy(dtype=np.int64)
    invoice = book.invoice_ids(refunded["inv_pos"].to_numpy(dtype=np.int64))
    start = periods["period_start"].to_numpy(dtype="datetime64[D]")[at]
    return pd.DataFrame(
        {
            "code": "refunded",
            "account_id": pd.array(book.contract_accounts(contract), dtype="str"),
            "contract_id": pd.array(book.contract_ids(contract), dtype="str"),
            "invoice_id": pd.array(invoice, dtype="str"),
            "period_start": start.astype(DATE),
            "period_end": (
                periods["period_end"].to_numpy(dtype="datetime64[D]")[at] - np.timedelta64(1, "D")
            ).astype(DATE),
            "currency": pd.array(book.currency_names(book.terms.currency[contract]), dtype="str"),
            # The period as billed, and what is left of it once the cash went back.
            "expected_minor": pd.array(billed, dtype="Int64"),
            "billed_minor": pd.array(billed - amount, dtype="Int64"),
            "variance_minor": pd.array(-amount, dtype="Int64"),
            "detail": pd.array(refunded["detail"].to_numpy(dtype=object), dtype="str"),
            "finding_key": pd.array("refunded:" + pd.Series(invoice, dtype="str"), dtype="str"),
            "pkey": periods["pkey"].to_numpy(dtype=np.int64)[at],
        }
    )


def with_credit_totals(
    by_currency: pd.DataFrame, given: GivenBack, currencies: pd.Index
) -> pd.DataFrame:
    """Per-currency totals with `credited_minor` and `refunded_minor`; billed net of credits.

    `credited_minor` counts the credits on lines of no contract period too.
    """
    names = currencies.to_numpy(dtype=object)
    credited = given.credited.groupby(names[given.credited["currency"].to_numpy(dtype=np.int64)])[
        "amount_minor"
    ].sum()
    refunded = given.refunded.groupby(names[given.refunded["currency"].to_numpy(dtype=np.int64)])[
        "amount_minor"
    ].sum()
    keyed = by_currency.set_index("currency")
    out = keyed.assign(
        credited_minor=credited.reindex(keyed.index).fillna(0).astype(np.int64),
        refunded_minor=refunded.reindex(keyed.index).fillna(0).astype(np.int64),
    )
    out["billed_minor"] = out["billed_minor"] - out["credited_minor"]
    # Lines of no contract period are already billed net (net_elsewhere): shown, not taken.
    on = given.elsewhere
    elsewhere = on.groupby(names[on["currency"].to_numpy(dtype=np.int64)])["amount_minor"].sum()
    out["credited_minor"] += elsewhere.reindex(out.index).fillna(0).astype(np.int64)
    out = out.reset_index()
    out["currency"] = out["currency"].astype("str")
    return out
