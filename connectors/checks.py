"""``check_party``: refuse a party whose data would leak or break the run before anything is sent."""

from __future__ import annotations

import numpy as np
from pandas.api.types import is_float_dtype

from fedtab.errors import ConfigError, PartyError, SchemaError, private
from fedtab.schema import ColumnKind, ColumnSchema, PartyTable


def check_party(party: PartyTable, *, min_rows: int) -> None:
    """Raise when a party has too few rows to take part, or ±inf in a numerical column.

    A party with very few rows leaks them: the statistics it shares (counts, means, mixture
    updates) are then close to the rows themselves. NaN is a missing value and is fine.
    """
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
        raise ConfigError(f"min_rows must be an int >= 1; got {min_rows!r}.")
    rows = party.num_rows
    if rows < min_rows:
        raise PartyError(
            f"party '{party.name}' has {rows} row{'s' if rows != 1 else ''}; every party needs at least "
            f"{min_rows} rows to take part. {_why_small(rows)} Remove the party or give it more rows."
        )
    problems = [
        f"column '{column.name}' of party '{party.name}' holds +/-inf in {private(f'{count} row' + ('s' if count != 1 else ''))}; "
        "replace those values with finite numbers or leave the cells empty (missing)"
        for column, count in _infinite_counts(party)
    ]
    if problems:
        raise SchemaError(f"Party '{party.name}' has infinite values; numerical columns must be finite:", problems)


def _why_small(rows: int) -> str:
    if rows == 0:
        return "It has nothing to contribute."
    if rows == 1:
        return "A one-row party's statistics would reveal its single row."
    return f"With only {rows} rows, the statistics it shares would come close to revealing them."


def _infinite_counts(party: PartyTable) -> list[tuple[ColumnSchema, int]]:
    found = []
    for column in party.schema:
        if column.kind is not ColumnKind.NUMERICAL or column.name not in party.frame.columns:
            continue
        values = party.frame[column.name]
        if is_float_dtype(values.dtype):
            count = int(np.isinf(values.to_numpy(dtype="float64", na_value=np.nan)).sum())
            if count:
                found.append((column, count))
    return found
