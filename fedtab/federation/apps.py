"""The Flower App components for the deployment engine (`flwr run`), named in pyproject's [tool.flwr.app]:
the ServerApp here, the ClientApp in ``node_app`` (kept light: Flower starts it afresh for every message).

Each SuperNode names its own table: ``--node-config "data-path='/data/a.parquet' party='clinic_a'"``,
and its own privacy terms, which it enforces whatever the server asks: ``epsilon``, ``delta``,
``require-dp`` (true: refuse requests without a privacy plan), ``accountant``, ``eps-error`` and
``state-dir`` (where it keeps its privacy record of each run, so checkpoints cannot be replayed).
The run config names the parties it expects (``parties='bank-a,bank-b'``: any other node is
refused; else ``num-parties``), the settings, where the server writes the trained model and,
optionally, a checkpoint to resume from (``resume-from``). ``vertical=true key='person_id'`` makes it a
vertical run (``vertical_flower.serve_vertical``; ``synthetic-out``, ``evaluate``). Progress and a failure's one-line reason
go to the ServerApp's stdout, which ``flwr run --stream`` shows the user. The schema comes from the schema round: each party
infers its own and releases what reconciliation needs. An optional ``schema-path`` (fedtab schema
or SDV metadata JSON) is a declaration sent to every party, not a schema shared by hand.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid

from fedtab.config import FedtabConfig
from fedtab.errors import ConfigError, FedtabError
from fedtab.federation.checkpoint import load_checkpoint
from fedtab.federation.coordinator import run_federation
from fedtab.federation.flower_apps import FlowerTransport, build_server_app
from fedtab.federation.node_app import client_app as client_app  # pyproject names node_app's; kept for older bundles
from fedtab.federation.node_app import vertical_keys
from fedtab.federation.schema_round import SchemaDeclaration
from fedtab.federation.vertical_flower import serve_vertical
from fedtab.schema import TableSchema

LOG_PREFIX = "fedtab: "


def load_schema(path: str) -> TableSchema:
    from fedtab.connectors import schema_from_sdv_metadata

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return TableSchema.from_dict(data) if "columns" in data and isinstance(data["columns"], list) else schema_from_sdv_metadata(data)


def expected_parties(run: Mapping[str, object]) -> int | list[str]:
    """The run config's ``parties`` (names, comma-separated), else its ``num-parties`` count."""
    names = [name.strip() for name in str(run.get("parties", "")).split(",") if name.strip()]
    if len(set(names)) != len(names):
        raise ConfigError(f"The run config's parties={run.get('parties')!r} names a party twice; give each party once.")
    return names or int(run.get("num-parties", 2))  # type: ignore[call-overload]


def announce(stage: str, done: int, total: int, record: Mapping[str, float]) -> None:
    """Progress as lines on the ServerApp's stdout, which `flwr run --stream` and `flwr log` show the user."""
    from fedtab.progress import metrics_text

    if stage == "encoders":
        print(f"{LOG_PREFIX}encoder statistics round {done}", flush=True)
    else:
        print(f"{LOG_PREFIX}training round {done}/{total}  {metrics_text(record)}", flush=True)


def connect(grid: Grid, run: Mapping[str, object], config: FedtabConfig) -> FlowerTransport:
    """Wait for the run's parties (by name) and tell the user who joined."""
    transport = FlowerTransport(grid, expected_parties=expected_parties(run), timeout=config.round_timeout)
    print(f"{LOG_PREFIX}parties {', '.join(f'{p} ({n} rows)' for p, n in sorted(transport.parties.items()))}", flush=True)
    return transport


def _server_main(grid: Grid, context: Context) -> None:
    run = context.run_config
    try:
        config = FedtabConfig.from_toml(str(run["config-path"])) if run.get("config-path") else FedtabConfig()
        key_columns = vertical_keys(run)
        if key_columns is not None:
            serve_vertical(connect(grid, run, config), config.replace(vertical=True, key_columns=key_columns), run,
                           lambda line: print(f"{LOG_PREFIX}{line}", flush=True))
            return
        if config.vertical:
            raise ConfigError("The run's config file sets vertical = true, but the run config does not: the SuperNodes "
                              "would serve a horizontal run. Pass `fedtab deploy run --vertical --key COLUMN`.")
        declaration = SchemaDeclaration(metadata=load_schema(str(run["schema-path"]))) if run.get("schema-path") else None
        resume = load_checkpoint(str(run["resume-from"])) if run.get("resume-from") else None
        transport = connect(grid, run, config)
        fit = run_federation(transport, config=config, declaration=declaration, resume=resume, progress=announce)
        out = str(run.get("model-out", "fedtab-model.pt"))
        fit.to_state(config).save(out)
        print(f"{LOG_PREFIX}model written to {out}", flush=True)
    except FedtabError as error:  # one line the user's `fedtab deploy run` repeats; Flower then marks the run failed
        print(f"{LOG_PREFIX}error: {' '.join(str(error).split())}", flush=True)
        raise


server_app = build_server_app(_server_main)
