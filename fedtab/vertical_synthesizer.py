"""The SDK for vertical federation: parties hold different columns about the same people.

Same manners as ``FederatedSynthesizer``: the constructor stores arguments, ``fit`` returns self,
``sample`` gives the same rows for the same seed, ``save``/``load`` round-trip. Here the caller plays
every role (as in the simulation engine), so after ``fit`` it holds the server's latent model and
every party's decoder; ``save`` writes them to separate files, because in a deployment they live on
different machines (the server's file never holds a decoder).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from fedtab.config import FedtabConfig
from fedtab.errors import ConfigError, NotFittedError
from fedtab.evaluation_run import evaluate_vertical_on_federation
from fedtab.export import export_table
from fedtab.federation.coordinator import Progress
from fedtab.federation.local import Tap
from fedtab.federation.vertical_coordinator import (LAYOUT_FILE, SERVER_FILE, PartyColumns, VerticalFit, VerticalLocalTransport,
                                                    assemble, party_slice, run_vertical, sample_latents, save_fit)
from fedtab.federation.vertical_party import VerticalParty, decode_party, decoder_file
from fedtab.model_state import ModelState
from fedtab.models.vertical import PartyDecoder
from fedtab.schema import TableSchema
from fedtab.synthesizer import EVALUATE_UNDER_DP

PartySource = str | Path | pd.DataFrame


class VerticalSynthesizer:
    """Fit per-party encoders and a shared latent model across parties that hold different columns.

    Parameters
    ----------
    config:
        The run's settings (``key_columns`` required; ``vertical`` is implied); keyword overrides
        replace single fields (``key_columns=("person_id",)``).
    engine:
        ``"simulation"`` runs Flower's simulation engine (one virtual SuperNode per party);
        ``"local"`` runs every party in this process, one after another (same results, no Ray).
    """

    def __init__(self, config: FedtabConfig | None = None, *, engine: str = "simulation", **overrides: Any) -> None:
        self.config = config
        self.engine = engine
        self.overrides = overrides

    def _resolved_config(self) -> FedtabConfig:
        base = self.config if self.config is not None else FedtabConfig()
        if not isinstance(base, FedtabConfig):
            raise ConfigError(f"config must be a FedtabConfig; got {type(base).__name__}. Build one with FedtabConfig(...).")
        return base.replace(vertical=True, **self.overrides)

    def fit(self, parties: Mapping[str, PartySource], *, progress: Progress | None = None, tap: Tap | None = None,
            tap_sent: Tap | None = None, evaluate: bool = False) -> VerticalSynthesizer:
        """Describe, align by PSI, release latents, fit the latent model; returns self.

        ``tap``/``tap_sent`` see every message a party sends and receives (tests inspect them). With
        ``evaluate``, each party then scores its own synthetic columns against its own aligned rows and
        only the scores come back (``report_``); refused under DP, as for horizontal runs.
        """
        if self.engine not in ("simulation", "local"):
            raise ConfigError(f"engine must be 'simulation' or 'local'; got {self.engine!r}.")
        config = self._resolved_config()
        if evaluate and config.private:
            raise ConfigError(EVALUATE_UNDER_DP)
        from fedtab.privacy.policy import policy_for

        after = partial(evaluate_vertical_on_federation, config=config) if evaluate else None
        with tempfile.TemporaryDirectory(prefix="fedtab-vertical-") as folder:
            staged = [VerticalParty(name, _staged_path(source, Path(folder) / f"party-{i}.parquet"), tuple(config.key_columns),
                                    policy=policy_for(config, name), state_dir=config.party_state_dir,
                                    decoder_dir=str(Path(folder) / f"decoder-{i}"))
                      for i, (name, source) in enumerate(parties.items())]
            if self.engine == "local":
                transport = VerticalLocalTransport(staged, tap=tap, tap_sent=tap_sent)
                fit = run_vertical(transport, config=config, progress=progress)
                report = after(transport, fit) if after else None
            else:
                from fedtab.federation.vertical_flower import run_vertical_simulation

                fit, report = run_vertical_simulation(staged, config=config, progress=progress, tap=tap, after=after)
            self.decoders_ = {p.name: PartyDecoder.from_bytes(Path(p.decoder_dir, decoder_file(p.name)).read_bytes())
                              for p in staged if p.decoder_dir is not None}
        self.fit_, self.config_, self.report_ = fit, config, report
        return self

    def sample(self, num_rows: int | None = None, *, seed: int | None = None) -> pd.DataFrame:
        """Synthetic rows with every party's columns (no keys), spelled as each party's file; same seed, same rows."""
        fit = self._fit()
        seed = self.config_.seed if seed is None else seed
        latents = sample_latents(fit.latent_model, num_rows or self.config_.rows or fit.rows, seed=seed)
        return assemble({p: decode_party(self.decoders_[p], party_slice(latents, p), seed=seed) for p in fit.parties}, fit)

    @property
    def schema_(self) -> TableSchema:
        """One schema for the synthetic table: each party's columns as its own encoders saw them."""
        fit = self._fit()
        return TableSchema(tuple(c for p in fit.parties for c in self.decoders_[p].plan.schema))

    @property
    def ledger_(self) -> dict | None:
        """Each party's privacy spend (ε, δ by mechanism) under DP; None without DP."""
        return self._fit().ledger

    def write(self, path: str | Path, num_rows: int | None = None, *, seed: int | None = None) -> Path:
        """Sample and write a .csv or .parquet file spelled as the parties' files."""
        return export_table(self.sample(num_rows, seed=seed), path, schema=self.schema_)

    def save(self, path: str | Path) -> Path:
        """A folder: the server's latent model, the layout, and one decoder file per party (held by that party in a deployment)."""
        folder = save_fit(self._fit(), self.config_, path)
        for party, decoder in self.decoders_.items():
            (folder / decoder_file(party)).write_bytes(decoder.to_bytes())
        return folder

    @classmethod
    def load(cls, path: str | Path) -> VerticalSynthesizer:
        folder = Path(path)
        if not (folder / LAYOUT_FILE).is_file():
            raise ConfigError(f"'{folder}' is not a saved vertical model (no {LAYOUT_FILE}). Pass the folder save() wrote.")
        layout = json.loads((folder / LAYOUT_FILE).read_text(encoding="utf-8"))
        config = FedtabConfig.from_dict(layout["config"])
        parties = {p: PartyColumns(tuple(i["columns"]), tuple(i["kinds"]), int(i["encoder_releases"]),
                                   int(i["partition_selections"])) for p, i in layout["parties"].items()}
        fit = VerticalFit(ModelState.load(folder / SERVER_FILE), parties, layout["latent_dims"], int(layout["rows"]),
                          layout["ledger"], layout["timings"])
        synthesizer = cls(config)
        synthesizer.fit_, synthesizer.config_, synthesizer.report_ = fit, config, None
        synthesizer.decoders_ = {p: PartyDecoder.from_bytes((folder / decoder_file(p)).read_bytes()) for p in parties}
        return synthesizer

    def _fit(self) -> VerticalFit:
        fit = getattr(self, "fit_", None)
        if fit is None:
            raise NotFittedError("This VerticalSynthesizer is not fitted yet. Call fit(parties) or load(path) first.")
        return fit


def _staged_path(source: PartySource, copy: Path) -> str:
    """A party's file as given (read again by the party, so its spelling survives), else a Parquet copy of the frame."""
    if isinstance(source, pd.DataFrame):
        source.to_parquet(copy, index=False)
        return str(copy)
    return str(Path(source).resolve()) if Path(source).exists() else str(source)

