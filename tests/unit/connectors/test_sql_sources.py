"""SQL sources through SQLAlchemy, on a SQLite file written in the test."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from fedtab.connectors import load_party
from fedtab.errors import PartyError
from fedtab.schema import ColumnKind


@pytest.fixture()
def db(tmp_path: Path) -> str:
    path = tmp_path / "clinic.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE visits (age INTEGER, ward TEXT, seen TEXT)"))
        connection.execute(sa.text(
            "INSERT INTO visits VALUES (30, 'A', '2024-01-02'), (NULL, 'B', '2024-01-03'), (55, NULL, NULL)"
        ))
        connection.execute(sa.text('CREATE TABLE "odd name" (x REAL)'))
        connection.execute(sa.text('INSERT INTO "odd name" VALUES (1.5)'))
    engine.dispose()
    return f"sqlite:///{path}"


def test_table_keyword(db: str) -> None:
    party = load_party("a", db, table="visits")
    assert [(c.kind, c.dtype) for c in party.schema] == [
        (ColumnKind.NUMERICAL, "Int64"), (ColumnKind.CATEGORICAL, "object"), (ColumnKind.DATETIME, "datetime64[ns]")
    ]
    assert party.frame["age"].tolist()[0] == 30 and party.frame["age"].isna().tolist() == [False, True, False]


def test_table_in_the_url_as_the_cli_writes_it(db: str) -> None:
    party = load_party("a", f"{db}?table=visits")
    assert party.num_rows == 3


def test_quoted_table_name(db: str) -> None:
    assert load_party("a", db, table="odd name").frame["x"].tolist() == [1.5]


def test_query(db: str) -> None:
    party = load_party("a", db, query="SELECT age FROM visits WHERE age IS NOT NULL")
    assert party.frame["age"].tolist() == [30, 55]
    assert party.schema["age"].dtype == "int64"


def test_missing_table_lists_the_tables(db: str) -> None:
    with pytest.raises(PartyError, match=r"party 'a': database sqlite:///.*: table 'visit' does not exist; "
                                         r"tables there: \['odd name', 'visits'\]"):
        load_party("a", db, table="visit")


def test_no_table_named(db: str) -> None:
    with pytest.raises(PartyError, match=r"name the table with table=NAME or '\?table=NAME'.*'visits'"):
        load_party("a", db)


def test_table_and_query_together(db: str) -> None:
    with pytest.raises(PartyError, match="either a table or a query, not both"):
        load_party("a", db, table="visits", query="SELECT 1")


def test_url_and_keyword_disagree(db: str) -> None:
    with pytest.raises(PartyError, match="the URL names table 'visits' but table='other' was passed"):
        load_party("a", f"{db}?table=visits", table="other")


def test_failing_query(db: str) -> None:
    with pytest.raises(PartyError, match=r"the query failed \(no such column: nope\)"):
        load_party("a", db, query="SELECT nope FROM visits")


def test_query_with_no_rows(db: str) -> None:
    with pytest.raises(PartyError, match="has no rows"):
        load_party("a", db, query="SELECT * FROM visits WHERE age > 100")


def test_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    with pytest.raises(PartyError, match=f"the SQLite file '{path}' does not exist"):
        load_party("a", f"sqlite:///{path}?table=t")
    assert not path.exists()


def test_unknown_dialect() -> None:
    with pytest.raises(PartyError, match="no SQLAlchemy dialect or driver for 'nosuchdb'"):
        load_party("a", "nosuchdb://host/db?table=t")


def test_password_never_shown() -> None:
    with pytest.raises(PartyError) as raised:
        load_party("a", "postgresql+nosuchdriver://ann:s3cret@localhost:1/db", table="t")
    assert "s3cret" not in str(raised.value)
    assert "ann:***@localhost" in str(raised.value)


def test_boolean_words_in_a_sql_table(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    pd.DataFrame({"flag": ["yes", "no"], "n": [1.0, 2.5]}).to_sql("t", engine, index=False)
    engine.dispose()
    party = load_party("a", f"sqlite:///{path}", table="t")
    assert party.frame["flag"].tolist() == [True, False]
