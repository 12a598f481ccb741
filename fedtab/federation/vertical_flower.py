"""The vertical protocol on Flower: a ClientApp around ``VerticalPartyWorker``, a simulation runner, and the
deployment engine's vertical side (the same ServerApp and ClientApp as horizontal runs, ``fedtab.federation.apps``).

The ServerApp and the transport are the horizontal ones (``flower_apps``); only the party's worker and
the message types it answers differ. Each party keeps its alignment secrets and decoder in
``context.state`` and writes its decoder to its own ``decoder_dir``, never into a reply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from flwr.app import Context
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid

from fedtab.config import FedtabConfig
from fedtab.errors import FederationError, FedtabError
from fedtab.federation.coordinator import Progress, Transport
from fedtab.federation.flower_apps import FlowerTransport, build_client_app, build_server_app, worker_answer
from fedtab.federation.local import Tap
from fedtab.federation.node_app import VERTICAL_MESSAGES
from fedtab.federation.node_app import vertical_keys as vertical_keys  # its home before node_app
from fedtab.federation.party import PartyWorker, StagedParty
from fedtab.federation.simulation import _quiet_flower, _worker_environment
from fedtab.federation.vertical_coordinator import VerticalFit, run_vertical
from fedtab.federation.vertical_party import VerticalParty, VerticalPartyWorker

After = Callable[[Transport, VerticalFit], Any]


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


# The deployment engine (`flwr run`, fedtab.federation.apps): the same apps serve both protocols. The run config's
# ``vertical=true key='person_id'`` makes every SuperNode a vertical party (its --node-config names its party, table
# and budget as for horizontal runs, ``node_app.party_from_node``) and the ServerApp run the vertical protocol.
def party_worker(party: StagedParty | VerticalParty) -> PartyWorker | VerticalPartyWorker:
    """The worker of whichever protocol the SuperNode's party was built for."""
    return VerticalPartyWorker(party) if isinstance(party, VerticalParty) else PartyWorker(party)


full_answer = worker_answer(party_worker)
"""What ``node_app`` asks for every message the light half (``parties``) does not answer."""


def serve_vertical(transport: FlowerTransport, config: FedtabConfig, run: Mapping[str, object], say: Callable[[str], None]) -> None:
    """The ServerApp's vertical run: align, latents, latent model; then the parties decode the synthetic table, which the
    server writes with its own files (no decoder: those stay with the parties), and optionally each party scores it."""
    from fedtab.evaluation_run import score_vertical
    from fedtab.export import export_table
    from fedtab.federation.vertical_coordinator import sample_through_parties, save_fit

    fit = run_vertical(transport, config=config, progress=lambda *_: say("latent round: every party released its latents"))
    say(f"aligned {fit.rows} people held by every party (private set intersection); latent model fitted "
        f"({fit.timings.get('latent_model_s', 0):.1f} s)")
    folder = save_fit(fit, config, str(run.get("model-out") or "fedtab-vertical-model"))
    synthetic = sample_through_parties(transport, fit, config.rows or fit.rows, seed=config.seed)
    out = Path(str(run.get("synthetic-out") or folder / "synthetic.parquet"))
    export_table(synthetic, out)
    say(f"server files written to {folder}; synthetic table ({len(synthetic)} rows, columns "
        f"{', '.join(synthetic.columns)}) written to {out}")
    if str(run.get("evaluate", "false")).strip().lower() in ("true", "1"):
        report = score_vertical(transport, fit, synthetic, seed=config.seed)
        html = report.to_html(out.with_suffix(".report.html"))
        report.to_json(out.with_suffix(".scores.json"))
        say("evaluation: " + "; ".join(f"{p.party} shapes {p.column_shapes:.3f}, pairs {p.pair_trends:.3f}" for p in report.parties)
            + f"; cross-party pairs unavailable; report {html}")
