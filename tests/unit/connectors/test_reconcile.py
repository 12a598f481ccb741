"""reconcile and align on small parties built here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fedtab.connectors import align, load_party, reconcile
from fedtab.errors import ConfigError, SchemaError
from fedtab.schema import ColumnKind, PartyTable


def party(name: str, **columns: list[object]) -> PartyTable:
    return load_party(name, pd.DataFrame(columns), id_threshold=5)


def test_column_order_of_the_first_party_wins() -> None:
    a = party("a", x=[1, 2], y=["u", "v"])
    b = party("b", y=["w", "u"], x=[3, 4])
    schema = reconcile([a, b])
    assert schema.names == ["x", "y"]
    aligned = align(b, schema)
    assert list(aligned.frame.columns) == ["x", "y"]
    assert aligned.frame["x"].tolist() == [3, 4]


def test_numerical_merge_integer_only_if_integer_everywhere() -> None:
    schema = reconcile([party("a", n=[1, 2], m=[1, 2]), party("b", n=[1.5, 2.0], m=[3, None])])
    assert (schema["n"].is_integer, schema["n"].dtype) == (False, "float64")
    assert (schema["m"].is_integer, schema["m"].has_missing, schema["m"].dtype) == (True, True, "Int64")


def test_all_missing_in_one_party_takes_the_others_kind() -> None:
    a = party("a", age=[30, 40], flag=["yes", "no"])
    b = party("b", age=[None, None], flag=[None, None])
    schema = reconcile([b, a])
    assert (schema["age"].kind, schema["age"].dtype) == (ColumnKind.NUMERICAL, "Int64")
    assert (schema["flag"].kind, schema["flag"].dtype) == (ColumnKind.BOOLEAN, "boolean")
    aligned = align(b, schema)
    assert [str(t) for t in aligned.frame.dtypes] == ["Int64", "boolean"]
    assert aligned.frame.isna().all().all()


def test_all_missing_everywhere_is_an_error() -> None:
    with pytest.raises(SchemaError, match=r"column 'z' has only missing values in every party \('a', 'b'\); "
                                          r"drop the column"):
        reconcile([party("a", z=[None]), party("b", z=[None, None])])


def test_every_mismatch_in_one_error() -> None:
    a = party("a", age=[30, 41, 52], city=["x", "y", "z"], d=["2020-01-01", "2020-01-02", "2020-01-03"])
    b = party("b", age=["30", "unknown", "unknown", "unknown"], extra=[1, 2, 3, 4],
              d=["1", "2", "3", "4"])
    with pytest.raises(SchemaError) as raised:
        reconcile([a, b])
    problems = raised.value.problems
    assert "column 'city' is missing in party 'b' (party 'a' has it)" in problems
    assert "column 'extra' of party 'b' is not in party 'a'" in problems
    assert (
        "column 'age' is numerical in party 'a' but categorical in party 'b' ('unknown' in 3 rows); "
        "clean those rows in party 'b', or set the column's kind at every party (--column age=categorical)"
    ) in problems
    conflict = "column 'd' is datetime in party 'a' but categorical in party 'b' ('1' in 1 row;"
    assert any(p.startswith(conflict) for p in problems)
    assert len(problems) == 4
    assert "do not reconcile (4 problem(s))" in str(raised.value)


def test_kind_conflict_without_text() -> None:
    a = party("a", v=pd.to_datetime(["2020-01-01", "2020-01-02"]))
    b = party("b", v=[1.5, 2.5])
    with pytest.raises(SchemaError, match=r"column 'v' is datetime in party 'a' but numerical in party 'b'; "
                                          r"set one kind for it at every party \(e.g. --column v=datetime\)"):
        reconcile([a, b])


def test_a_conflict_whose_values_fit_advises_a_kind_not_cleaning() -> None:
    a = party("a", n=[1.5, 2.5])
    b = load_party("b", pd.DataFrame({"n": ["3", "4"]}), overrides={"n": "categorical"})
    with pytest.raises(SchemaError, match=r"every value would read as numerical\); set the column's kind at every "
                                          r"party \(--column n=numerical\)") as raised:
        reconcile([a, b])
    assert "clean" not in str(raised.value)


def test_identifier_in_any_party_wins() -> None:
    a = party("a", key=[f"k{i}" for i in range(10)])
    b = party("b", key=["k1", "k1", "k2"])
    schema = reconcile([b, a])
    assert (schema["key"].kind, schema["key"].dtype) == (ColumnKind.IDENTIFIER, "object")
    assert "identifier-like" in schema["key"].note


def test_a_party_that_sees_one_boolean_word_joins_the_boolean() -> None:
    schema = reconcile([party("a", f=["yes", "no"]), party("b", f=["yes", "yes"]), party("c", f=[0, 1])])
    assert (schema["f"].kind, schema["f"].dtype) == (ColumnKind.BOOLEAN, "bool")
    assert align(party("b", f=["yes", "yes"]), schema).frame["f"].tolist() == [True, True]


def test_boolean_against_other_words_is_a_conflict() -> None:
    with pytest.raises(SchemaError, match=r"column 'f' is boolean in party 'a' but categorical in party 'b' "
                                          r"\('maybe' in 2 rows\)"):
        reconcile([party("a", f=["yes", "no"]), party("b", f=["maybe", "yes", "maybe"])])


def test_categorical_override_conflict_says_values_would_fit() -> None:
    a = party("a", n=[1, 2])
    b = load_party("b", pd.DataFrame({"n": [3, 4]}), overrides={"n": "categorical"})
    with pytest.raises(SchemaError, match=r"but categorical in party 'b' \(every value would read as numerical\)"):
        reconcile([a, b])


def test_duplicate_party_names_and_no_parties() -> None:
    with pytest.raises(ConfigError, match=r"\['a'\] appear more than once"):
        reconcile([party("a", x=[1]), party("a", x=[2])])
    with pytest.raises(ConfigError, match="at least one party"):
        reconcile([])


def test_align_names_bad_values_with_counts() -> None:
    a = party("a", age=[30, 40])
    b = party("b", age=["31", "?!", "?!", "n/a"])
    schema = reconcile([a])
    with pytest.raises(SchemaError) as raised:
        align(b, schema)
    assert raised.value.problems == (
        "Column 'age' of party 'b' holds text ('?!' in 2 rows; 3 rows in all hold such values); the schema says "
        "numerical. Clean those rows or set its kind to categorical (--column age=categorical).",
    )


def test_align_reports_missing_and_extra_columns_together() -> None:
    schema = reconcile([party("a", x=[1], y=[2])])
    with pytest.raises(SchemaError) as raised:
        align(party("b", x=[1], z=[3]), schema)
    assert set(raised.value.problems) == {
        "column 'y' is missing in party 'b'", "column 'z' of party 'b' is not in the schema; drop it",
    }


def test_align_casts_to_the_merged_dtypes() -> None:
    a = party("a", n=[1, 2], s=["x", "y"])
    b = party("b", n=[1.5, np.nan], s=["z", "x"])
    schema = reconcile([a, b])
    aligned = align(a, schema)
    assert aligned.frame["n"].dtype == "float64"
    assert aligned.schema is schema
    assert [str(t) for t in aligned.frame.dtypes] == [c.dtype for c in schema]


def test_codes_at_one_party_and_numbers_at_another_merge_as_numbers_with_a_note() -> None:
    a = load_party("a", pd.DataFrame({"kids": [0, 1, 2] * 10}))
    b = load_party("b", pd.DataFrame({"kids": list(range(15)) * 3}))
    assert (a.schema["kids"].kind, b.schema["kids"].kind) == (ColumnKind.CATEGORICAL, ColumnKind.NUMERICAL)
    merged = reconcile([a, b])["kids"]
    assert (merged.kind, merged.dtype) == (ColumnKind.NUMERICAL, "int64")
    assert "--column kids=categorical" in merged.note
    assert align(a, reconcile([a, b])).frame["kids"].dtype == "int64"


def test_coded_categories_stay_integers_through_align() -> None:
    a = load_party("a", pd.DataFrame({"sex": [1, 2] * 10}))
    b = load_party("b", pd.DataFrame({"sex": [2, 1, 1] * 10}))
    schema = reconcile([a, b])
    assert (schema["sex"].kind, schema["sex"].dtype) == (ColumnKind.CATEGORICAL, "int64")
    assert align(b, schema).frame["sex"].tolist()[:3] == [2, 1, 1]


def test_words_a_party_read_as_booleans_stay_words_where_the_schema_says_categorical() -> None:
    reread = load_party("a", pd.DataFrame({"smoker": ["yes", "no", None, "yes"] * 3}))
    assert reread.schema["smoker"].kind is ColumnKind.BOOLEAN and reread.schema["smoker"].tokens == ("yes", "no")
    declared = load_party("b", pd.DataFrame({"smoker": ["yes", "no"] * 3}), overrides={"smoker": "categorical"})
    aligned = align(reread, declared.schema)
    assert aligned.frame["smoker"].tolist()[:4] == ["yes", "no", None, "yes"]
