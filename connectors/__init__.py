"""Read one party's local table into a :class:`~fedtab.schema.PartyTable`, and make parties agree.

``load_party`` reads a file, a SQL table or an in-memory frame and infers (or checks) its
schema; ``reconcile`` merges the parties' schemas; ``align`` casts a party to the merged schema;
``check_party`` refuses a party too small or with infinite values to take part.
"""

from fedtab.connectors.checks import check_party
from fedtab.connectors.inference import infer_schema
from fedtab.connectors.load import load_party
from fedtab.connectors.reconcile import align, reconcile
from fedtab.connectors.sdv_metadata import schema_from_sdv_metadata, schema_to_sdv_metadata
from fedtab.connectors.values import NULL_TOKENS

__all__ = [
    "NULL_TOKENS",
    "align",
    "check_party",
    "infer_schema",
    "load_party",
    "reconcile",
    "schema_from_sdv_metadata",
    "schema_to_sdv_metadata",
]
