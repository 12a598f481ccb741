"""check_party: too-small parties and infinite values are refused before anything is shared."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fedtab.connectors import check_party, infer_schema, load_party
from fedtab.errors import ConfigError, PartyError, SchemaError
from fedtab.schema import PartyTable


def test_enough_rows_with_nan_pass() -> None:
    party = load_party("a", pd.DataFrame({"x": [1.0, np.nan, 3.0], "s": ["u", None, "v"]}))
    check_party(party, min_rows=3)


def test_empty_party() -> None:
    frame = pd.DataFrame({"x": pd.Series([], dtype="float64")})
    empty = PartyTable("b", frame, infer_schema(frame))
    with pytest.raises(PartyError, match=r"party 'b' has 0 rows; every party needs at least 5 rows .* "
                                         r"Remove the party or give it more rows"):
        check_party(empty, min_rows=5)


def test_one_row_party_says_its_row_would_be_revealed() -> None:
    with pytest.raises(PartyError, match=r"party 'c' has 1 row; every party needs at least 2 rows to take part\. "
                                         r"A one-row party's statistics would reveal its single row\."):
        check_party(load_party("c", pd.DataFrame({"x": [1]})), min_rows=2)


def test_few_rows() -> None:
    with pytest.raises(PartyError, match="has 3 rows; .* With only 3 rows"):
        check_party(load_party("c", pd.DataFrame({"x": [1, 2, 3]})), min_rows=10)


def test_infinite_values_listed_per_column() -> None:
    frame = pd.DataFrame({"a": [1.0, np.inf, -np.inf, 2.0], "b": [np.inf, 1.0, 2.0, 3.0], "c": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(SchemaError) as raised:
        check_party(load_party("d", frame), min_rows=1)
    assert raised.value.problems == (
        "column 'a' of party 'd' holds +/-inf in 2 rows; replace those values with finite numbers or leave the "
        "cells empty (missing)",
        "column 'b' of party 'd' holds +/-inf in 1 row; replace those values with finite numbers or leave the "
        "cells empty (missing)",
    )


def test_inf_read_from_csv(tmp_path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("x\n1.5\ninf\n")
    with pytest.raises(SchemaError, match="column 'x' of party 'e' holds \\+/-inf in 1 row"):
        check_party(load_party("e", path), min_rows=1)


@pytest.mark.parametrize("min_rows", [0, -1, 1.5])
def test_bad_min_rows(min_rows: object) -> None:
    with pytest.raises(ConfigError, match="min_rows must be an int >= 1"):
        check_party(load_party("a", pd.DataFrame({"x": [1]})), min_rows=min_rows)  # type: ignore[arg-type]
