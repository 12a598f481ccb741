"""``load_party``: read one party's table and give it a schema, inferred or declared."""

from __future__ import annotations

from collections.abc import Mapping

from fedtab.connectors.casting import conform
from fedtab.connectors.declared import fit_declared, with_kinds
from fedtab.connectors.inference import infer_schema, parse_kinds, spelled
from fedtab.connectors.sources import Source, read_source
from fedtab.connectors.values import DATE_SHARE
from fedtab.errors import ConfigError
from fedtab.schema import ColumnKind, PartyTable, TableSchema


def load_party(
    name: str,
    source: Source,
    *,
    overrides: Mapping[str, str | ColumnKind] | None = None,
    table: str | None = None,
    query: str | None = None,
    metadata: TableSchema | None = None,
    id_threshold: int = 1000,
    encoding: str = "utf-8",
) -> PartyTable:
    """Read a party's rows and return them with normalised dtypes and their schema.

    Parameters
    ----------
    name : the party's name; every error message names it.
    source : a ``.csv``, ``.csv.gz``, ``.tsv`` or ``.parquet`` path, a SQLAlchemy URL (which may
        carry ``?table=NAME``), or a pandas or polars DataFrame.
    overrides : column -> kind; wins over inference, and over ``metadata``'s kinds.
    table, query : what to read from a SQL URL.
    metadata : a declared schema; the data is checked against it instead of inferred.
    id_threshold : see :func:`infer_schema`.
    encoding : the text encoding of a CSV/TSV file.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"A party name must be non-empty text; got {name!r}. Name the party, e.g. 'clinic_a'.")
    kinds = parse_kinds(overrides, party=name)
    if kinds and metadata is not None:
        metadata = with_kinds(metadata, kinds, party=name)
    text_columns = _text_columns(kinds, metadata)
    frame = read_source(name, source, table=table, query=query, encoding=encoding, text_columns=text_columns)
    if metadata is not None:
        schema = spelled(fit_declared(frame, metadata, party=name), frame)
        return PartyTable(name, conform(frame, schema, party=name), schema)
    schema = infer_schema(frame, overrides=overrides, id_threshold=id_threshold, party=name)
    return PartyTable(name, conform(frame, schema, party=name, date_tolerance=1.0 - DATE_SHARE), schema)


def _text_columns(kinds: Mapping[str, ColumnKind], metadata: TableSchema | None) -> set[str]:
    """Columns declared categorical are read from files as text, keeping spellings like '007'."""
    declared = {c.name: c.kind for c in metadata} if metadata is not None else dict(kinds)
    return {column for column, kind in declared.items() if kind is ColumnKind.CATEGORICAL}
