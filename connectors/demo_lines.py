"""Contract-line plants of the demo book (issue 14): contracts billed line by line.

Each chosen contract is re-billed here from its own contract lines (Order/OrderItem as the
CRM records them) over the whole history: its base invoices, charges and subscription are
replaced. The prices are the demo's own (decimal, half up; connectors.demo_common), never the
reconciler's: this is an oracle. The kinds (`LINE_PLANT_CODES`, codes () = must be clean):

- `multi`: seats + a platform fee; `multi_unbilled`: the window invoice lacks the fee.
- `upgrade`: +5 seats from the 16th day of the window period, an amendment Order revising the
  seats line; Stripe bills it at once as a proration pair (credit for the unused time of the old
  quantity, charge for the remaining time of the new one).
- `reprice`: an amendment: a 20-seat line at a new price from the window period while the old
  line ends the day before.
- `ramp`: the price steps up from the window period, billed through a Stripe subscription
  schedule whose second phase changes the price on the ramp date (connectors.demo_schedules);
  `ramp_missed`: the schedule never got that phase, so Stripe kept billing the old price.
- `usage`: a platform fee plus metered events billed in arrears (the period's events, less
  those included, on the next invoice); `usage_short`: the window period's events under-billed.
- `trial`: a contract starting in the window after a 14-day $0 trial invoice.
- `one_time`: an onboarding fee billed once, on the invoice of the period holding its date.
- `credit_*`, `refund*`: multi-product contracts whose window invoice gets money given back
  (connectors.demo_credits).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd

from revops.connectors.demo_common import TAX_BP, DemoSpec, half_up, metered_events, sf_ids
from revops.connectors.demo_schedules import RAMPS, phase_price, ramp_schedule
from revops.errors import ConfigError

LINE_PLANT_CODES: dict[str, tuple[str, ...]] = {
    "multi": (),
    "multi_unbilled": ("underbilled",),
    "upgrade": (),
    "reprice": (),
    "ramp": (),
    "ramp_missed": ("underbilled",),
    "usage": (),
    "usage_short": ("underbilled",),
    "trial": (),
    "one_time": (),
    "credit_after_payment": ("credited",),
    "credit_void": (),
    "credit_one_line": ("credited",),
    "refund_alone": ("refunded",),
    "refund_with_note": ("credited",),
    "credit_grant": ("credited",),
}
METERED_METRIC = "events"
TIME_OF_DAY = 36_000  # subscriptions are created at 10:00 UTC; Stripe bills on that instant
TRIAL_DAYS = 14


def events_between(account_number: int, start: date, end: date, seed: int) -> int:
    """Metered events of one account in [start, end)."""
    days = pd.date_range(start, end - timedelta(days=1), freq="D")
    if len(days) == 0:
        return 0
    return int(metered_events(np.array([account_number]), days, seed).sum())


@dataclass
class Line:
    """One contract line (an OrderItem) and the Stripe price that bills it."""

    line_id: str
    product: str
    price: str
    quantity: int
    unit: int  # minor units per unit per month
    charge: str = "recurring"
    start: date | None = None
    end: date | None = None  # inclusive, as in the CRM
    revises: str | None = None
    metric: str | None = None
    included: int | None = None

    def active(self, day: date) -> bool:
        """Whether the line is in force on `day`."""
        return (self.start is None or self.start <= day) and (self.end is None or day <= self.end)


@dataclass
class Billed:
    """What the generator wrote for one line contract."""

    lines: list[Line]
    invoices: list[dict] = field(default_factory=list)
    invoice_lines: list[dict] = field(default_factory=list)
    window_invoice: str | None = None
    # False when the plant's finding cannot show by as_of (usage not yet billed in arrears).
    shows: bool = True
    variance: int | None = None  # billed less expected of the planted finding
    schedule: dict | None = None  # the Stripe subscription schedule that bills a ramp


def choose_line_plants(
    spec: DemoSpec, contracts: pd.DataFrame, taken: set[int]
) -> dict[str, np.ndarray]:
    """Distinct monthly Activated contracts, one account each, one set per line kind."""
    w0, w1 = pd.Timestamp(spec.window.start), pd.Timestamp(spec.window.end)
    fits = (
        (contracts["status"] == "Activated")
        & (contracts["billing_frequency"] == "monthly")
        & (contracts["start_date"] <= w0 - pd.Timedelta(days=70))
        & (contracts["end_date"] >= w1 + pd.Timedelta(days=35))
        & ~contracts["account_id"].duplicated(keep=False)
    ).to_numpy()
    candidates = np.array([i for i in np.flatnonzero(fits) if i not in taken], dtype=np.int64)
    per_kind = max(1, spec.size // 400)
    needed = per_kind * len(LINE_PLANT_CODES)
    if len(candidates) < needed:
        raise ConfigError(f"demo size {spec.size} is too small to plant every line finding")
    rng = np.random.default_rng(spec.seed + 3)
    # Usage is billed in arrears: its plants want a window period over (and billed) by as_of.
    starts = contracts["start_date"].to_numpy()[candidates]
    over = np.array(
        [
            add_month(_window_period(pd.Timestamp(s).date(), spec.window.start), 1) <= spec.as_of
            for s in starts
        ],
        dtype=bool,
    )
    arrears = ("usage", "usage_short")
    early = candidates[over]
    first = rng.choice(early, min(len(early), per_kind * len(arrears)), replace=False)
    rest = rng.choice(np.setdiff1d(candidates, first), needed - len(first), replace=False)
    chosen = np.concatenate([first, rest])
    order = [*arrears, *(k for k in LINE_PLANT_CODES if k not in arrears)]
    return {
        kind: np.sort(chosen[i * per_kind : (i + 1) * per_kind]) for i, kind in enumerate(order)
    }


def contract_lines_of(kind: str, contract: pd.Series, window_start: date) -> list[Line]:
    """The contract's lines (OrderItems) for a line plant kind."""
    number = int(contract["contract_id"][-11:])
    cur = contract["currency"].lower()
    unit, seats = int(contract["unit_price_minor"]), int(contract["quantity"])
    fee = 20 * unit

    def line(n: int, product: str, price: str, quantity: int, each: int, **kw: object) -> Line:
        return Line(
            str(sf_ids("802", np.array([number * 10 + n]))[0]),
            product,
            f"price_{cur}_{price}_{each}",
            quantity,
            each,
            **kw,  # type: ignore[arg-type]
        )

    seats_line = line(1, "01tDEMOSEATS0001", "seat", seats, unit)
    platform = line(2, "01tDEMOPLATFORM1", "platform", 1, fee)
    before = window_start - timedelta(days=1)
    if kind == "upgrade":
        return [seats_line]  # the +5 seats line is added by the generator (its date varies)
    if kind == "reprice":
        seats_line.end = before
        new = line(3, "01tDEMOSEATS0001", "seat", 20, unit * 9 // 10, revises=seats_line.line_id)
        new.start = window_start
        return [seats_line, new]
    if kind in ("ramp", "ramp_missed"):
        seats_line.end = before
        step = line(3, "01tDEMOSEATS0001", "seat", seats, unit * 12 // 10, start=window_start)
        return [seats_line, step]
    if kind in ("usage", "usage_short"):
        each = max(1, unit // 500)
        metered = line(
            3, "01tDEMOEVENTS001", "events", 1, each, charge="usage", metric=METERED_METRIC
        )
        metered.included = 1_000
        return [platform, metered]
    if kind == "one_time":
        onboarding = line(4, "01tDEMOONBOARD01", "onboarding", 1, 10 * unit, charge="one_time")
        return [seats_line, onboarding]
    if kind == "trial":
        return [seats_line]
    return [seats_line, platform]


def bill_line_contract(
    spec: DemoSpec, kind: str, contract: pd.Series, history_start: date
) -> Billed:
    """Invoices (current-shape facts, canonical columns) for one line contract's history."""
    as_of = spec.as_of
    start = contract["start_date"].date()
    end = contract["end_date"].date()
    lines = contract_lines_of(kind, contract, _window_period(start, spec.window.start))
    billed = Billed(lines)
    periods = []
    k = 0
    while True:
        ps = add_month(start, k)
        if ps > as_of or ps > end:
            break
        if ps >= history_start:
            periods.append((ps, add_month(start, k + 1)))
        k += 1
    window = [p for p in periods if spec.window.start <= p[0] < spec.window.end]
    wps, wpe = window[0]
    if kind in RAMPS:
        billed.schedule = ramp_schedule(kind, contract, lines, as_of, _unix)
    if kind == "upgrade":
        upgrade_day = max(
            min(wps + timedelta(days=15), as_of - timedelta(days=1)), wps + timedelta(days=1)
        )
        seats = lines[0]
        more = Line(
            seats.line_id[:-1] + "3",
            seats.product,
            seats.price,
            5,
            seats.unit,
            start=upgrade_day,
            revises=seats.line_id,
        )
        lines.append(more)
    if kind == "trial":
        trial_start = start - timedelta(days=TRIAL_DAYS)
        invoice = _invoice(billed, contract, trial_start, "subscription_create")
        _line(billed, invoice, lines[0], lines[0].quantity, 0, trial_start, start)
        _close(billed, invoice)
    number = int(contract["contract_id"][-11:])
    short = False
    for i, (ps, pe) in enumerate(periods):
        reason = "subscription_create" if (kind == "trial" and i == 0) else "subscription_cycle"
        invoice = _invoice(billed, contract, ps, reason)
        if ps == wps:
            billed.window_invoice = invoice["invoice_id"]
        for ln in lines:
            if ln.charge == "recurring" and _in_force(ln, lines, ps):
                item, unit, price = ln, ln.unit, ln.price
                if billed.schedule is not None:  # Stripe bills the phase in force, its item
                    price = phase_price(billed.schedule, _unix(ps)) or price
                    item = next(x for x in lines if x.price == price)
                    unit = item.unit
                    if ps == wps and unit != ln.unit:
                        billed.variance = (unit - ln.unit) * ln.quantity
                if kind == "multi_unbilled" and ps == wps and ln.product == "01tDEMOPLATFORM1":
                    billed.variance = -ln.unit * ln.quantity
                    continue
                _line(billed, invoice, item, _quantity(ln, lines, ps), unit, ps, pe, price=price)
            if ln.charge == "one_time" and ps == wps:
                day = ps + timedelta(days=2)
                ln.start = day
                _line(billed, invoice, ln, 1, ln.unit, day, day, item=True)
            if ln.charge == "usage" and i > 0:
                # In arrears: the previous period's events, less those included.
                prev_start, prev_end = periods[i - 1]
                used = events_between(number, prev_start, prev_end, spec.seed)
                units = max(0, used - int(ln.included or 0))
                if kind == "usage_short" and prev_start == wps:
                    billed.variance = -min(units, 150) * ln.unit
                    units -= min(units, 150)
                    short = True
                _line(billed, invoice, ln, units, ln.unit, prev_start, prev_end, metered=True)
        _close(billed, invoice)
    if kind == "upgrade":
        _prorate(billed, contract, lines, wps, wpe)
    # The window period's events are billed on the next invoice: none yet if it is after as_of.
    billed.shows = kind != "usage_short" or short
    return billed


def _window_period(start: date, window_start: date) -> date:
    k = 0
    while add_month(start, k) < window_start:
        k += 1
    return add_month(start, k)


def add_month(day: date, k: int) -> date:
    """`day` + k months, clamped to the month's end (the Stripe billing anchor rule)."""
    index = day.year * 12 + day.month - 1 + k
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _in_force(line: Line, lines: list[Line], day: date) -> bool:
    # An amendment line that adds quantity (+5 seats) bills through the line it revises.
    if line.revises is not None and any(
        o.line_id == line.revises and o.price == line.price for o in lines
    ):
        return False
    return line.active(day)


def _quantity(line: Line, lines: list[Line], day: date) -> int:
    extra = sum(
        o.quantity
        for o in lines
        if o.revises == line.line_id and o.price == line.price and o.active(day)
    )
    return line.quantity + extra


def _instant(day: date, seconds: int = TIME_OF_DAY) -> pd.Timestamp:
    return pd.Timestamp(day, tz="UTC") + pd.Timedelta(seconds=seconds)


def _unix(day: date) -> int:
    return int(_instant(day).timestamp())


def _invoice(billed: Billed, contract: pd.Series, day: date, reason: str) -> dict:
    number = int(contract["contract_id"][-11:])
    invoice_id = f"in_line{number:06d}{len(billed.invoices) + 1:03d}"
    at = _instant(day)
    invoice = {
        "invoice_id": invoice_id,
        "number": f"DEMO-L{number:05d}-{len(billed.invoices) + 1:03d}",
        "customer_id": contract["customer_id"],
        "subscription_id": contract["stripe_sub"],
        "status": "paid",
        "currency": contract["currency"],
        "created_at": at,
        "period_start": at,
        "period_end": at,
        "billing_reason": reason,
        "finalized_at": at,
        "tax_bp": TAX_BP[contract["currency"]] if number % 5 < 2 else 0,
    }
    billed.invoices.append(invoice)
    return invoice


def _line(
    billed: Billed,
    invoice: dict,
    line: Line,
    quantity: int,
    unit: int,
    start: date,
    end: date,
    *,
    price: str | None = None,
    amount: int | None = None,
    proration: bool = False,
    metered: bool = False,
    item: bool = False,
) -> None:
    n = sum(1 for x in billed.invoice_lines if x["invoice_id"] == invoice["invoice_id"]) + 1
    billed.invoice_lines.append(
        {
            "line_id": f"il_{invoice['invoice_id'][3:]}_{n}",
            "invoice_id": invoice["invoice_id"],
            "subscription_id": invoice["subscription_id"],
            "line_type": "invoiceitem" if item else "subscription",
            "price_id": price or line.price,
            "description": f"{quantity} x {line.product}",
            "quantity": quantity,
            "unit_amount_minor": unit,
            "amount_minor": quantity * unit if amount is None else amount,
            "discount_minor": 0,
            "currency": invoice["currency"],
            "period_start": _instant(start),
            "period_end": _instant(end),
            "proration": proration,
            "subscription_item_id": None
            if item
            else f"si_{invoice['subscription_id'][4:]}_{line.line_id[-2:]}",
            "usage_type": "metered" if metered else ("licensed" if not item else None),
        }
    )


def _close(billed: Billed, invoice: dict) -> None:
    """Fill the invoice's money from its lines: subtotal, exclusive tax, total, paid."""
    subtotal = sum(
        x["amount_minor"] for x in billed.invoice_lines if x["invoice_id"] == invoice["invoice_id"]
    )
    tax = half_up(Decimal(subtotal) * invoice.pop("tax_bp") / 10_000)
    invoice.update(
        subtotal_minor=subtotal,
        tax_minor=tax,
        total_minor=subtotal + tax,
        amount_paid_minor=subtotal + tax,
        amount_due_minor=subtotal + tax,
    )


def _prorate(billed: Billed, contract: pd.Series, lines: list[Line], ps: date, pe: date) -> None:
    """+5 seats from the upgrade day, invoiced at once (proration_behavior=always_invoice)."""
    seats, more = lines[0], lines[-1]
    day = more.start
    assert day is not None
    fraction = Decimal((pe - day).days) / Decimal((pe - ps).days)
    invoice = _invoice(billed, contract, day, "subscription_update")
    old, new = seats.quantity, seats.quantity + more.quantity
    unused = half_up(Decimal(old * seats.unit) * fraction)
    remaining = half_up(Decimal(new * seats.unit) * fraction)
    _line(billed, invoice, seats, old, seats.unit, day, pe, amount=-unused, proration=True)
    _line(billed, invoice, seats, new, seats.unit, day, pe, amount=remaining, proration=True)
    _close(billed, invoice)
