"""Problems found in a flow file: what is wrong, and where (file:line:column)."""

from __future__ import annotations

from dataclasses import dataclass

from routilux.exceptions import FlowFileError

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One problem in a flow file; ``line`` and ``column`` count from 1 (0: unknown)."""

    file: str
    line: int
    column: int
    message: str
    severity: str = ERROR

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.severity}: {self.message}"


def errors(problems: list[Problem]) -> list[Problem]:
    """The problems that are errors (not warnings)."""
    return [p for p in problems if p.severity == ERROR]


def flow_file_error(problems: list[Problem]) -> FlowFileError:
    """One exception for all the errors: its message is the first one, on one line."""
    found = errors(problems) or problems
    message = str(found[0])
    if len(found) > 1:
        message += (
            f" (and {len(found) - 1} more; `routilux validate {found[0].file}` lists them all)"
        )
    return FlowFileError(message, found)
