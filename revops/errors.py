"""The error hierarchy: every message is one a RevOps person can act on."""

from __future__ import annotations


class RevOpsError(Exception):
    """Base class for errors the CLI reports without a traceback."""


class ConfigError(RevOpsError):
    """A setting or a file under configs/ is missing or invalid."""


class InputError(RevOpsError):
    """Source data is malformed; names the file, row and column when they are known.

    `row` is the 1-based data row (the header is not counted); `line` is the physical line
    in the file, which is what a spreadsheet or editor shows.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        line: int | None = None,
    ) -> None:
        self.file = file
        self.row = row
        self.column = column
        self.line = line
        self.reason = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}" + (f" (line {self.line})" if self.line else ""))
        if self.column:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason


class InputErrors(InputError):
    """Several input problems found in one pass, reported together."""

    def __init__(self, errors: list[InputError]) -> None:
        self.errors = errors
        shown = "\n".join(f"  - {e}" for e in errors[:50])
        more = f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(f"{len(errors)} problems in the input:\n{shown}{more}")

    def _render(self) -> str:
        return self.reason


class SourceError(RevOpsError):
    """An outside system (Stripe, Salesforce, a warehouse) failed or refused a request.

    `transient`: the same request may succeed later (a timeout, a 5xx), so a task may retry.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        self.transient = transient
        super().__init__(message)


class RateLimited(SourceError):
    """An outside system asked us to slow down; transient, retried with backoff."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, transient=True)
