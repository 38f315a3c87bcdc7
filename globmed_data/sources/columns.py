"""A batch of records mapped field by field: one comprehension per field over every record.

The mapping's rules are written once, per record (RecordMapper's field methods). Run record by
record, each field costs a chain of small calls; run as a column, the common case of a field is
one expression over the whole batch and the per-record rule is called only where the expression
cannot decide: for the records it marks UNDECIDED, or for all when it raises. A record that
fails a field keeps that field's error, the first in the mapping's order as when it is mapped
alone, and leaves the batch: the fields after it never see it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class _UndecidedValue:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNDECIDED"


UNDECIDED: Any = _UndecidedValue()  # a column's value left to the per-record rule


class Columns:
    """The live records of one batch and the columns made for them so far."""

    def __init__(self, records: list[dict[str, Any]], extras: list[dict[str, Any]]) -> None:
        self.records = records
        self.extras = extras
        self.index = list(range(len(records)))  # a live record's place in the batch
        self.columns: dict[str, list[Any]] = {}
        self.errors: dict[int, Exception] = {}  # a failed record's place -> its first error

    def __len__(self) -> int:
        return len(self.records)

    def add(self, name: str, column: Callable[[], list[Any]], one: Callable[[int], Any]) -> list[Any]:
        """The field `name` for every live record. `column()` makes it for all at once, giving
        each record exactly what `one(i)`, the per-record rule, gives, or UNDECIDED where it
        cannot tell (an error to report, an unusual value); where it raises, it has decided
        nothing. The rule makes the undecided records' values, and the records whose rule
        raises leave the batch."""
        try:
            values = column()
        except Exception:  # a batch the expression cannot decide at all: the rule decides each one
            values = [UNDECIDED] * len(self.records)
        if UNDECIDED in values:
            values = self._by_rule(values, one)
        self.columns[name] = values
        return values

    def constant(self, name: str, value: Any) -> list[Any]:
        values = self.columns[name] = [value] * len(self.records)
        return values

    def _by_rule(self, values: list[Any], one: Callable[[int], Any]) -> list[Any]:
        values = list(values)
        failed: list[int] = []
        for i, value in enumerate(values):
            if value is not UNDECIDED:
                continue
            try:
                values[i] = one(i)
            except Exception as exc:  # the record's error: quarantined by the caller, never raised
                self.errors[self.index[i]] = exc
                failed.append(i)
        if failed:
            values = self._drop(failed, values)
        return values

    def _drop(self, failed: list[int], values: list[Any]) -> list[Any]:
        gone = set(failed)
        keep = [i for i in range(len(self.records)) if i not in gone]
        self.records = [self.records[i] for i in keep]
        self.extras = [self.extras[i] for i in keep]
        self.index = [self.index[i] for i in keep]
        for name, column in self.columns.items():
            self.columns[name] = [column[i] for i in keep]
        return [values[i] for i in keep]
