"""Read a party's table, or the result of a query, through a SQLAlchemy URL.

The CLI writes a party as ``NAME=sqlite:///x.db?table=t``, so a ``table`` query parameter is
taken off the URL here. Passwords never appear in error messages.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, URL

from fedtab.errors import PartyError, private

_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")
_FORM = "write it like sqlite:///path/to/file.db?table=NAME or postgresql://user@host/db"


def read_sql(party: str, url_text: str, *, table: str | None = None, query: str | None = None) -> pd.DataFrame:
    """All rows of ``table`` (or of ``query``) at ``url_text``, as pandas."""
    url, table = _split_table(party, url_text, table)
    shown = url.render_as_string(hide_password=True)
    label = f"party '{party}': database {shown}"
    if table is not None and query is not None:
        raise PartyError(f"{label}: pass either a table or a query, not both.")
    _check_sqlite_file(label, url)
    engine = _engine(label, url)
    try:
        with _connect(label, engine) as connection:
            if query is not None:
                return _run_query(label, connection, query)
            return _read_table(label, connection, table)
    finally:
        engine.dispose()


def _split_table(party: str, url_text: str, table: str | None) -> tuple[URL, str | None]:
    try:
        url = sa.make_url(url_text)
    except sa.exc.ArgumentError as err:
        raise PartyError(f"party '{party}': {_redact(url_text)!r} is not a SQLAlchemy URL; {_FORM}.") from err
    from_url = url.query.get("table")
    if isinstance(from_url, tuple):
        from_url = from_url[-1]
    if from_url is not None and table is not None and from_url != table:
        raise PartyError(
            f"party '{party}': the URL names table {from_url!r} but table={table!r} was passed; keep one of them."
        )
    return url.difference_update_query(["table"]), table if table is not None else from_url


def _check_sqlite_file(label: str, url: URL) -> None:
    """SQLite would silently create a missing file; a typo in the path must fail instead."""
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and database and database != ":memory:" and not database.startswith("file:"):
        if not Path(database).is_file():
            raise PartyError(f"{label}: the SQLite file '{database}' does not exist; check the path.")


def _engine(label: str, url: URL) -> Engine:
    try:
        return sa.create_engine(url)
    except sa.exc.NoSuchModuleError as err:
        raise PartyError(
            f"{label}: no SQLAlchemy dialect or driver for '{url.drivername}'. "
            "Install the database driver package, or fix the URL's scheme."
        ) from err
    except (sa.exc.ArgumentError, ImportError) as err:
        raise PartyError(f"{label}: cannot use this URL ({_redact(str(err))}); {_FORM}.") from err


def _connect(label: str, engine: Engine) -> Connection:
    try:
        return engine.connect()
    except sa.exc.SQLAlchemyError as err:
        raise PartyError(
            f"{label}: cannot connect ({_brief(err)}). Check the URL, the server and the credentials."
        ) from err


def _read_table(label: str, connection: Connection, table: str | None) -> pd.DataFrame:
    names = sa.inspect(connection).get_table_names()
    if table is None:
        raise PartyError(
            f"{label}: name the table with table=NAME or '?table=NAME' in the URL; tables there: {private(names)}."
        )
    try:
        reflected = sa.Table(table, sa.MetaData(), autoload_with=connection)
    except sa.exc.NoSuchTableError as err:
        raise PartyError(
            f"{label}: table {table!r} does not exist; tables there: {private(names)}. Fix the table name."
        ) from err
    return _run(label, connection, sa.select(reflected), f"reading table {table!r}")


def _run_query(label: str, connection: Connection, query: str) -> pd.DataFrame:
    return _run(label, connection, sa.text(query), "the query")


def _run(label: str, connection: Connection, statement: sa.Executable, what: str) -> pd.DataFrame:
    try:
        return pd.read_sql(statement, connection)
    except sa.exc.SQLAlchemyError as err:
        raise PartyError(f"{label}: {what} failed ({_brief(err)}). Fix the query or the table name.") from err


def _brief(err: sa.exc.SQLAlchemyError) -> str:
    original = getattr(err, "orig", None)
    return private(_redact(str(original if original is not None else err).strip().splitlines()[0]))


def _redact(text: str) -> str:
    return _PASSWORD.sub(r"\1***@", text)
