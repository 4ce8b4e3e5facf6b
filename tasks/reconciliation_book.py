"""The shared vocabulary of reconciliation: its input, its result, and one run's book.

Split from tasks/reconciliation.py: the engine (reconciliation.py), the finding builders
(reconciliation_findings.py, line_findings.py) and the summaries (reconciliation_summary.py)
all read a `Book`: the run's frames row-positioned, with the contracts' terms and lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from revops.money import ISO_4217_EXPONENTS
from revops.periods import Window
from revops.tasks.contract_lines import LineTable
from revops.tasks.credits import Credits
from revops.tasks.matching import ContractTerms
from revops.tasks.reconciliation_config import ReconciliationConfig

FINDING_COLUMNS = [
    "run_id",
    "code",
    "severity",
    "account_id",
    "contract_id",
    "invoice_id",
    "period_start",
    "period_end",
    "currency",
    "expected_minor",
    "billed_minor",
    "variance_minor",
    "detail",
    "finding_key",
]
MATCHED_COLUMNS = [
    "run_id",
    "account_id",
    "contract_id",
    "invoice_id",
    "period_start",
    "period_end",
    "currency",
    "expected_minor",
    "billed_minor",
    "credited_minor",
    "refunded_minor",
    "net_billed_minor",
    "status",
]
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}
# Every ISO 4217 code: a fixed list, so currencies need no pass over the data to be coded.
CURRENCIES = pd.Index(sorted(ISO_4217_EXPONENTS), dtype="str")
PERIOD_BITS = 16
ONE_DAY = np.timedelta64(1, "D")


@dataclass(frozen=True)
class ReconciliationInput:
    """The canonical frames reconciliation reads."""

    accounts: pd.DataFrame
    contracts: pd.DataFrame
    customers: pd.DataFrame
    invoices: pd.DataFrame
    invoice_lines: pd.DataFrame
    # Optional: a book without them reconciles each contract as its one line.
    contract_lines: pd.DataFrame | None = None
    usage: pd.DataFrame | None = None
    subscriptions: pd.DataFrame | None = None
    # Optional: credit notes, credit grants and refunds (tasks.credits); none when absent.
    credits: Credits | None = None


@dataclass(frozen=True)
class ReconciliationResult:
    """Findings (exceptions), matched pairs (audit trail) and money totals for one window.

    `findings` and `matched` have FINDING_COLUMNS / MATCHED_COLUMNS with run_id left empty
    for the publisher to fill. Dates are calendar dates; `period_end` is inclusive (the last
    day of service), like a Salesforce EndDate.
    """

    window: Window
    as_of: date
    findings: pd.DataFrame
    matched: pd.DataFrame
    by_code: pd.DataFrame
    by_currency: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Book:
    """The frames of one run, row-positioned, and the shared currency codes."""

    accounts: pd.DataFrame
    contracts: pd.DataFrame
    invoices: pd.DataFrame
    currencies: pd.Index
    terms: ContractTerms
    invoice_account: np.ndarray  # account row of each invoice's customer, -1 when unlinked
    config: ReconciliationConfig
    table: LineTable
    # The contracts as billed: a line billed more often than its contract sets its periods.
    billed_contracts: pd.DataFrame

    def contract_ids(self, rows: np.ndarray) -> np.ndarray:
        return take(self.contracts["contract_id"], rows)

    def contract_accounts(self, rows: np.ndarray) -> np.ndarray:
        return take(self.contracts["account_id"], rows)

    def invoice_ids(self, rows: np.ndarray) -> np.ndarray:
        return take(self.invoices["invoice_id"], rows)

    def currency_names(self, codes: np.ndarray) -> np.ndarray:
        return self.currencies.to_numpy(dtype=object)[codes]

    def tolerance(self, codes: np.ndarray) -> np.ndarray:
        names = self.currencies
        by_code = np.array([self.config.tolerance.absolute_for(c) for c in names], dtype=np.int64)
        return by_code[codes] if len(names) else np.zeros(len(codes), dtype=np.int64)


def take(values: pd.Series, rows: np.ndarray) -> np.ndarray:
    """values[rows] as an object array, None where rows is -1."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(values) == 0:
        return np.full(len(rows), None, dtype=object)
    # Taken before the cast: a Python object for each row asked for, not for the column.
    taken = np.array(values.array.take(np.maximum(rows, 0)).to_numpy(dtype=object), copy=True)
    taken[rows < 0] = None
    return taken
