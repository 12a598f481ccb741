"""The server's side of a vertical run, beside the horizontal ``coordinator`` and over the same ``Transport``.

Rounds, each one message per party (a round trip costs ~0.3 s in simulation and seconds in deployment,
so nothing here is per step):

1. ``query.vertical_describe``: each party checks its keys locally and sends its column names and
   kinds; the server refuses a column name held by two parties.
2. alignment by PSI (``alignment.align_parties``): the server learns the intersection's size only.
3. under DP, ``query.plan``: each party accepts its noise plan for the aligned rows, or refuses.
4. ``train.vertical_latents``: each party fits its encoders and autoencoder and sends one latent per
   aligned row (clipped, noised and charged under DP).
5. the server fits a latent model (a horizontal plugin, ``config.model``) on the parties' latents side by
   side, in the agreed row order, and drops the real latents.
6. sampling (``query.vertical_decode`` or, in the SDK, each party's decoder where it lives): synthetic
   latents out, each party's synthetic columns back; the caller assembles them by row position.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fedtab.config import FedtabConfig
from fedtab.errors import ConfigError, FederationError
from fedtab.federation import keys
from fedtab.federation.alignment import align_parties
from fedtab.federation.coordinator import Progress, Transport, run_federation
from fedtab.federation.local import LocalTransport, Tap
from fedtab.federation.party import StagedParty
from fedtab.federation.payload import Payload
from fedtab.federation.privacy_run import PrivacyRun, confirm_plans
from fedtab.federation.vertical_party import VerticalParty, VerticalPartyWorker, frame_from_bytes
from fedtab.model_state import ModelState
from fedtab.models.vertical import autoencoder_options
from fedtab.privacy.planning import PrivacyBudget, default_delta, plan_noise
from fedtab.sampler import sample_table
from fedtab.schema import ColumnKind, ColumnSchema, TableSchema
from fedtab.threads import single_torch_thread

LATENT_PARTY = "latents"
SERVER_FILE = "server.fedtab"
LAYOUT_FILE = "vertical.json"


@dataclass(frozen=True)
class PartyColumns:
    """What a party disclosed in the describe round: its modelled columns, their kinds, its encoder releases."""

    columns: tuple[str, ...]
    kinds: tuple[str, ...]
    encoder_releases: int
    partition_selections: int


@dataclass(frozen=True)
class VerticalFit:
    """The server's result: the latent model, the party order and widths, the intersection size, the ledger."""

    latent_model: ModelState
    parties: dict[str, PartyColumns]
    latent_dims: dict[str, int]
    rows: int
    ledger: dict | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """The synthetic table's columns: every party's, in party order."""
        return [c for p in self.parties.values() for c in p.columns]


class VerticalLocalTransport(LocalTransport):
    """Every vertical party's worker in this process (the reference the Flower engines must agree with)."""

    def __init__(self, parties: list[VerticalParty], *, tap: Tap | None = None, tap_sent: Tap | None = None) -> None:
        super().__init__(parties, tap=tap, tap_sent=tap_sent, worker=VerticalPartyWorker)


def run_vertical(transport: Transport, *, config: FedtabConfig, progress: Progress | None = None) -> VerticalFit:
    """Describe, align, (plan), release latents, fit the latent model; see the module docstring."""
    started = time.perf_counter()
    key_columns = tuple(config.key_columns)
    parties = describe_round(transport, key_columns)
    rows = align_parties(transport, key_columns, min_rows=config.vertical_min_rows, seed=config.seed)
    aligned = time.perf_counter()
    privacy = plan_vertical_privacy(config, parties, rows) if config.private else None
    if privacy is not None:
        confirm_plans(transport, privacy)
    latents = latent_round(transport, config=config, parties=parties, rows=rows, privacy=privacy)
    if progress:
        progress("latents", 1, 1, {})
    released = time.perf_counter()
    frame = pd.concat([pd.DataFrame(latents[p], columns=latent_names(p, latents[p].shape[1])) for p in parties], axis=1)
    model = fit_latent_model(frame, config)
    del frame, latents
    timings = {"align_s": aligned - started, "latents_s": released - aligned, "latent_model_s": time.perf_counter() - released}
    dims = {p: config.latent_dim for p in parties}
    ledger = None if privacy is None else privacy.ledger().to_dict()
    return VerticalFit(model, parties, dims, rows, ledger, timings)


def describe_round(transport: Transport, key_columns: tuple[str, ...]) -> dict[str, PartyColumns]:
    """Each party's columns; a column name held by two parties is refused before anything row-level leaves."""
    if not key_columns:
        raise ConfigError("A vertical run needs at least one key column (--key person_id); got none.")
    names = sorted(transport.parties)
    if len(names) < 2:
        raise ConfigError(f"A vertical run joins at least two parties; got {names}. Add parties with --party NAME=PATH.")
    replies = transport.exchange(keys.V_DESCRIBE, {p: Payload(config={keys.KEY_COLUMNS: list(key_columns)}) for p in names})
    described = {p: PartyColumns(tuple(map(str, replies[p].config[keys.COLUMNS])),  # type: ignore[arg-type]
                                 tuple(map(str, replies[p].config[keys.KINDS])),  # type: ignore[arg-type]
                                 int(replies[p].config[keys.ENCODER_RELEASES]),  # type: ignore[arg-type]
                                 int(replies[p].config[keys.PARTITION_SELECTIONS])) for p in names}  # type: ignore[arg-type]
    owner: dict[str, str] = {}
    for party, info in described.items():
        for column in info.columns:
            if column in owner:
                raise ConfigError(f"Column {column!r} is held by party {owner[column]!r} and by party {party!r}; in a "
                                  "vertical run each column belongs to one party. Rename or drop it at one of them.")
            owner[column] = party
    return described


def plan_vertical_privacy(config: FedtabConfig, parties: Mapping[str, PartyColumns], rows: int) -> PrivacyRun:
    """Each party's noise for its aligned rows: its encoder statistics plus one latent release, and DP-SGD."""
    delta = config.delta if config.delta is not None else default_delta(rows)
    budget = PrivacyBudget(float(config.epsilon or 0), delta, config.encoder_share)
    plans = {p: plan_noise(budget=budget, party_rows=rows, batch_size=min(config.batch_size, rows),
                           epochs=config.rounds * config.local_epochs, encoder_releases=info.encoder_releases + 1,
                           partition_selections=info.partition_selections, accountant=config.accountant, party=p)
             for p, info in parties.items()}
    return PrivacyRun(budget, plans)


def latent_round(transport: Transport, *, config: FedtabConfig, parties: Mapping[str, PartyColumns], rows: int,
                 privacy: PrivacyRun | None) -> dict[str, np.ndarray]:
    """One message per party: its latents for the aligned rows, checked for shape; under DP, its spend mirrored."""

    common = {keys.RUN + ".seed": config.seed, keys.RUN + ".epochs": float(config.rounds * config.local_epochs),
              keys.RUN + ".batch_size": config.batch_size,
              keys.RUN + ".options": json.dumps(autoencoder_options(config.latent_dim, config.latent_hidden)),
              keys.RUN + ".encoders": json.dumps(encoder_options(config))}
    payloads = {p: Payload(config={**common, **({} if privacy is None else {
        **privacy.stats_config(p), keys.DP_MAX_GRAD_NORM: float(config.max_grad_norm)})}) for p in parties}
    replies = transport.exchange(keys.V_ENCODE, payloads)
    missing = sorted(set(parties) - set(replies))
    if missing:
        raise FederationError(f"Parties {missing} sent no latents; every party's columns are needed. Check them and rerun.")
    latents = {p: np.asarray(replies[p].arrays[keys.LATENTS], dtype=np.float64) for p in parties}
    for p, values in latents.items():
        if values.shape != (rows, config.latent_dim) or not np.isfinite(values).all():
            raise FederationError(f"Party {p!r} sent latents of shape {values.shape}; expected {(rows, config.latent_dim)} "
                                  "finite values (one per aligned row). Run every party on one fedtab version.")
        if privacy is not None:
            privacy.record_reply(p, str(replies[p].config[keys.DP_REPORT]), mechanism="training")
    return latents


def encoder_options(config: FedtabConfig) -> dict[str, int]:
    """The encoder settings every party fits its own columns with (the horizontal run's knobs)."""
    return {"num_components": config.bgm_components, "sample_cap": config.bgm_sample_cap,
            "max_em_rounds": config.bgm_max_rounds, "max_categories": config.max_categories,
            "min_category_count": config.min_category_count}


def latent_names(party: str, width: int) -> list[str]:
    return [f"{party}.z{i}" for i in range(width)]


def fit_latent_model(frame: pd.DataFrame, config: FedtabConfig) -> ModelState:
    """The server's model of the parties' latents: the horizontal pipeline with the server as its only party.

    Under DP the latents are already private, so this is post-processing and runs without DP.
    """
    latent_config = FedtabConfig(model=config.model, rounds=config.rounds, local_epochs=config.local_epochs,
                                 batch_size=config.batch_size, seed=config.seed, model_options=config.model_options,
                                 bgm_components=config.bgm_components, bgm_sample_cap=config.bgm_sample_cap,
                                 bgm_max_rounds=config.bgm_max_rounds)
    schema = TableSchema(tuple(ColumnSchema(name, ColumnKind.NUMERICAL, "float64") for name in frame.columns))
    with tempfile.TemporaryDirectory(prefix="fedtab-latents-") as folder:
        path = Path(folder) / "latents.parquet"
        frame.to_parquet(path, index=False)
        transport = LocalTransport([StagedParty(LATENT_PARTY, str(path), seed=config.seed)])
        fit = run_federation(transport, config=latent_config, schema=schema)
    return fit.to_state(latent_config)


def sample_latents(model: ModelState, num_rows: int, *, seed: int) -> pd.DataFrame:
    with single_torch_thread():
        return sample_table(model, num_rows, seed=seed)


def party_slice(latents: pd.DataFrame, party: str) -> np.ndarray:
    return latents[[c for c in latents.columns if c.startswith(f"{party}.z")]].to_numpy(dtype=np.float64)


def sample_through_parties(transport: Transport, fit: VerticalFit, num_rows: int, *, seed: int) -> pd.DataFrame:
    """Synthetic latents to each party, its synthetic columns back, assembled by row position (the server assembles)."""
    latents = sample_latents(fit.latent_model, num_rows, seed=seed)
    replies = transport.exchange(keys.V_DECODE, {p: Payload(arrays={keys.LATENTS: party_slice(latents, p)},
                                                            config={keys.RUN + ".seed": seed}) for p in fit.parties})
    return assemble({p: frame_from_bytes(replies[p].arrays[keys.SYNTHETIC]) for p in fit.parties}, fit)


def assemble(columns: Mapping[str, pd.DataFrame], fit: VerticalFit) -> pd.DataFrame:
    """One table: each party's released columns side by side, in party order, checked against what it described."""
    for party, info in fit.parties.items():
        if list(columns[party].columns) != list(info.columns):
            raise FederationError(f"Party {party!r} released columns {list(columns[party].columns)}; it described "
                                  f"{list(info.columns)}. Run every party on one fedtab version.")
    return pd.concat([columns[p].reset_index(drop=True) for p in fit.parties], axis=1)


def save_fit(fit: VerticalFit, config: FedtabConfig, folder: str | Path) -> Path:
    """The server's files of a vertical run: its latent model and the layout (no decoder: those stay with the parties)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fit.latent_model.save(folder / SERVER_FILE)
    layout = {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.to_dict().items()},
              "parties": {p: vars(info) | {"columns": list(info.columns), "kinds": list(info.kinds)}
                          for p, info in fit.parties.items()},
              "latent_dims": fit.latent_dims, "rows": fit.rows, "ledger": fit.ledger, "timings": fit.timings}
    (folder / LAYOUT_FILE).write_text(json.dumps(layout, indent=1), encoding="utf-8")
    return folder
