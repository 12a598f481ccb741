"""The embedded default: Flower's simulation engine, one virtual SuperNode per party, on this machine."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from flwr.app import Context
from flwr.serverapp import Grid

from fedtab.config import FedtabConfig
from fedtab.errors import FedtabError, FederationError
from fedtab.federation.coordinator import AfterTraining, FederatedFit, Progress, run_federation
from fedtab.federation.flower_apps import FlowerTransport, build_client_app, build_server_app
from fedtab.federation.local import Tap
from fedtab.federation.party import StagedParty
from fedtab.federation.schema_round import SchemaDeclaration
from fedtab.model_state import ModelState
from fedtab.schema import TableSchema

_WORKER_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "RAY_DEDUP_LOGS": "0",
}


def run_simulation(
    parties: Sequence[StagedParty],
    *,
    config: FedtabConfig,
    schema: TableSchema | None = None,
    declaration: SchemaDeclaration | None = None,
    progress: Progress | None = None,
    tap: Tap | None = None,
    after_training: AfterTraining | None = None,
    resume: ModelState | None = None,
) -> FederatedFit:
    """Run the whole federation in Flower's simulation engine and return its result.

    Like the config and schema, a ``resume`` checkpoint reaches the ServerApp through its closure.
    """
    from flwr.simulation import run_simulation as flower_run_simulation

    outcome: dict[str, Any] = {}

    def main(grid: Grid, context: Context) -> None:
        try:
            transport = FlowerTransport(grid, expected_parties=[p.name for p in parties], timeout=config.round_timeout, tap=tap)
            outcome["fit"] = run_federation(transport, config=config, schema=schema, declaration=declaration, progress=progress,
                                            after_training=after_training, resume=resume)
        except BaseException as error:  # re-raised in the caller's thread, with its type
            outcome["error"] = error

    server_app = build_server_app(main)
    client_app = build_client_app(lambda context: parties[int(context.node_config["partition-id"])])
    backend = {
        "client_resources": {"num_cpus": config.num_cpus_per_party, "num_gpus": 0.0},
        "init_args": {
            "logging_level": logging.ERROR,
            "log_to_driver": False,
            "include_dashboard": False,
        },
    }
    with _quiet_flower(), _worker_environment():
        flower_run_simulation(server_app=server_app, client_app=client_app, num_supernodes=len(parties), backend_config=backend)
    if "error" in outcome:
        error = outcome["error"]
        if isinstance(error, FedtabError):
            raise error
        raise FederationError(f"The federation stopped: {type(error).__name__}: {error}") from error
    if "fit" not in outcome:
        raise FederationError("The simulation ended without a result; rerun with FEDTAB_DEBUG=1 to see Flower's log.")
    return outcome["fit"]


@contextlib.contextmanager
def _worker_environment() -> Iterator[None]:
    """Ray workers inherit the driver's environment: one BLAS thread each, no telemetry; restored after."""
    previous = {key: os.environ.get(key) for key in _WORKER_ENV}
    os.environ.update(_WORKER_ENV)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _quiet_flower() -> Iterator[None]:
    """Flower and Ray talk a lot; keep the user's terminal for our progress bar unless debugging."""
    if os.environ.get("FEDTAB_DEBUG"):
        yield
        return
    flwr_logger = logging.getLogger("flwr")
    previous = flwr_logger.level
    flwr_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        flwr_logger.setLevel(previous)
