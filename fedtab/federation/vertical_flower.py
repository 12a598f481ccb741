"""The vertical protocol on Flower: a ClientApp around ``VerticalPartyWorker`` and a simulation runner.

The ServerApp and the transport are the horizontal ones (``flower_apps``); only the party's worker and
the message types it answers differ. Each party keeps its alignment secrets and decoder in
``context.state`` and writes its decoder to its own ``decoder_dir``, never into a reply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from flwr.app import Context
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid

from fedtab.config import FedtabConfig
from fedtab.errors import FederationError, FedtabError
from fedtab.federation import keys
from fedtab.federation.alignment import ALIGN_MESSAGES
from fedtab.federation.coordinator import Progress, Transport
from fedtab.federation.flower_apps import FlowerTransport, build_client_app, build_server_app
from fedtab.federation.local import Tap
from fedtab.federation.simulation import _quiet_flower, _worker_environment
from fedtab.federation.vertical_coordinator import VerticalFit, run_vertical
from fedtab.federation.vertical_party import VerticalParty, VerticalPartyWorker

After = Callable[[Transport, VerticalFit], Any]
VERTICAL_MESSAGES = (keys.HELLO, keys.V_DESCRIBE, keys.CONSENT, keys.V_ENCODE, keys.V_DECODE, keys.EVALUATE, *sorted(ALIGN_MESSAGES))


def build_vertical_client_app(resolve_party: Callable[[Context], VerticalParty]) -> ClientApp:
    """The horizontal ClientApp's plumbing with ``VerticalPartyWorker`` behind every vertical message type."""
    return build_client_app(resolve_party, worker=VerticalPartyWorker, message_types=VERTICAL_MESSAGES)


def run_vertical_simulation(parties: Sequence[VerticalParty], *, config: FedtabConfig, progress: Progress | None = None,
                            tap: Tap | None = None, after: After | None = None) -> tuple[VerticalFit, Any]:
    """The vertical run in Flower's simulation engine, one virtual SuperNode per party; ``after(transport, fit)``
    runs while the parties are still up (the evaluation) and its result comes back beside the fit."""
    from flwr.simulation import run_simulation as flower_run_simulation

    outcome: dict[str, Any] = {}

    def main(grid: Grid, context: Context) -> None:
        try:
            transport = FlowerTransport(grid, expected_parties=len(parties), timeout=config.round_timeout, tap=tap)
            outcome["fit"] = run_vertical(transport, config=config, progress=progress)
            outcome["after"] = after(transport, outcome["fit"]) if after else None
        except BaseException as error:  # re-raised in the caller's thread, with its type
            outcome["error"] = error

    client_app = build_vertical_client_app(lambda context: parties[int(context.node_config["partition-id"])])
    backend = {"client_resources": {"num_cpus": config.num_cpus_per_party, "num_gpus": 0.0},
               "init_args": {"logging_level": logging.ERROR, "log_to_driver": False, "include_dashboard": False}}
    with _quiet_flower(), _worker_environment():
        flower_run_simulation(server_app=build_server_app(main), client_app=client_app, num_supernodes=len(parties),
                              backend_config=backend)
    if "error" in outcome:
        if isinstance(outcome["error"], FedtabError):
            raise outcome["error"]
        raise FederationError(f"The federation stopped: {type(outcome['error']).__name__}: {outcome['error']}") from outcome["error"]
    if "fit" not in outcome:
        raise FederationError("The simulation ended without a result; rerun with FEDTAB_DEBUG=1 to see Flower's log.")
    return outcome["fit"], outcome.get("after")
