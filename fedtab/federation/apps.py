"""The Flower App components for the deployment engine (`flwr run`), named in pyproject's [tool.flwr.app].

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
from fedtab.federation.flower_apps import FlowerTransport, build_client_app, build_server_app
from fedtab.federation.party import StagedParty
from fedtab.federation.schema_round import SchemaDeclaration
from fedtab.federation.vertical_flower import DEPLOYMENT_MESSAGES, party_worker, serve_vertical, vertical_keys
from fedtab.federation.vertical_party import VerticalParty
from fedtab.privacy.accountant import DEFAULT_ACCOUNTANT
from fedtab.privacy.policy import PartyPolicy
from fedtab.schema import TableSchema

LOG_PREFIX = "fedtab: "


def _party_from_node(context: Context) -> StagedParty | VerticalParty:
    node = context.node_config
    if "data-path" not in node:
        raise ConfigError("This SuperNode has no 'data-path' in its --node-config; start it with data-path='/path/to/table'.")
    name = str(node.get("party", f"node-{context.node_id}"))
    state_dir = str(node["state-dir"]) if node.get("state-dir") else None
    key_columns = vertical_keys(context.run_config)
    if key_columns is not None:  # a vertical run: the party keeps its decoder in decoder-dir (default: its state-dir)
        decoder_dir = str(node.get("decoder-dir") or state_dir or "") or None
        return VerticalParty(name, str(node["data-path"]), key_columns, policy=node_policy(node, name),
                             state_dir=state_dir, decoder_dir=decoder_dir)
    return StagedParty(name, str(node["data-path"]), policy=node_policy(node, name), state_dir=state_dir)


def node_policy(node: Mapping[str, object], party: str) -> PartyPolicy:
    """The SuperNode's own privacy terms from its --node-config (see the module docstring)."""
    def number(key: str) -> float | None:
        value = node.get(key)
        try:
            return None if value in (None, "") else float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ConfigError(f"SuperNode {party!r}: node-config {key}={value!r} is not a number; "
                              f"give e.g. {key}=1.0.") from None

    required = str(node.get("require-dp", "false")).strip().lower()
    if required not in ("true", "false", "1", "0"):
        raise ConfigError(f"SuperNode {party!r}: node-config require-dp={node.get('require-dp')!r}; give true or false.")
    try:
        return PartyPolicy(number("epsilon"), number("delta"), required in ("true", "1"),
                           str(node.get("accountant", DEFAULT_ACCOUNTANT)), number("eps-error"))
    except ConfigError as error:
        raise ConfigError(f"SuperNode {party!r} cannot start with its --node-config: {error}") from error


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
client_app = build_client_app(_party_from_node, worker=party_worker, message_types=DEPLOYMENT_MESSAGES)
