"""What a party does in a vertical run: describe its columns, align by PSI, release latents, decode.

Transport-free like ``party.PartyWorker``. A party's rows and keys are read here and never leave:
the describe round sends column names and kinds, alignment sends only PSI messages
(``alignment.py``), the latent round sends one latent vector per aligned row (clipped and noised
under DP), and the decode round sends synthetic columns decoded from synthetic latents.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from fedtab.errors import PartyError
from fedtab.federation import keys
from fedtab.federation.alignment import aligned_rows
from fedtab.federation.disclosure import error_reply, refuse_evaluation_under_dp
from fedtab.federation.parties import VerticalParty, answer, answers_lightly, read_table
from fedtab.federation.party import noise_seed, with_noise_seed
from fedtab.federation.party_guard import PartyGuard
from fedtab.federation.payload import Payload
from fedtab.federation.vertical_evaluation import score_own_columns
from fedtab.models.privacy import TrainingPrivacy
from fedtab.models.vertical import (PartyDecoder, decode_latents, fit_party_plan, private_latents, row_latents,
                                    train_autoencoder)
from fedtab.privacy.accountant import PartyAccountant
from fedtab.privacy.encoders import private_statistics
from fedtab.privacy.planning import PrivacyPlan
from fedtab.privacy.policy import check_release, refuse_without_plan
from fedtab.rng import numpy_rng
from fedtab.sampler import spell
from fedtab.schema import PartyTable, TableSchema
from fedtab.transformers import PlanFitter

Weights = dict[str, np.ndarray]


class VerticalPartyWorker:
    """Answers the vertical coordinator's messages for one party."""

    def __init__(self, party: VerticalParty) -> None:
        self.party = party

    def handle(self, message_type: str, payload: Payload, state: Weights) -> tuple[Payload, Weights]:
        try:
            if answers_lightly(self.party, message_type):  # greeting and alignment (``parties``)
                return answer(self.party, message_type, payload, state)
            if message_type == keys.V_DESCRIBE:
                return self._describe(payload), state
            if message_type == keys.CONSENT:
                return self._consent(payload, state), state
            if message_type == keys.V_ENCODE:
                return self._encode(payload, state)
            if message_type == keys.V_DECODE:
                return self._decode(payload, state), state
            if message_type == keys.EVALUATE:  # scores of its own columns only; none once it made DP releases
                refuse_evaluation_under_dp(self.party.name, state, require_dp=self.party.policy.require_dp)
                table = self._aligned(state)
                return score_own_columns(self.party.name, table.frame, table.schema, payload), state
        except Exception as error:  # noqa: BLE001 - failures leave redacted; the full text stays in the party's log
            return error_reply(self.party.name, message_type, error), state
        return Payload.from_error(PartyError(f"Unknown message type '{message_type}'; update fedtab on this party.")), state

    def _table(self) -> PartyTable:
        return read_table(self.party.name, self.party.path)

    def _describe(self, payload: Payload) -> Payload:
        """Column names and kinds (not keys) and what a private encoder fit of them would release."""
        asked = tuple(str(k) for k in payload.config[keys.KEY_COLUMNS])  # type: ignore[union-attr]
        table = self._table()
        check_keys(table, asked)
        schema = modelled_schema(table.schema, asked)
        releases, selections = PlanFitter.release_plan(schema)
        return Payload(config={keys.PARTY: self.party.name, keys.COLUMNS: schema.names,
                               keys.KINDS: [c.kind.value for c in schema], keys.ENCODER_RELEASES: int(releases),
                               keys.PARTITION_SELECTIONS: int(selections)})

    def _aligned(self, state: Weights) -> PartyTable:
        table = self._table()
        frame = aligned_rows(table.frame, state, self.party.key_columns)
        return PartyTable(self.party.name, frame, modelled_schema(table.schema, self.party.key_columns))

    def _guard(self, state: Weights) -> PartyGuard:
        return PartyGuard(self.party.name, self.party.policy, len(self._aligned(state).frame), self.party.state_dir)

    def _consent(self, payload: Payload, state: Weights) -> Payload:
        """Accept or refuse the plan for the aligned rows before anything row-level is released."""
        plan = PrivacyPlan.from_dict(json.loads(str(payload.config[keys.DP_PLAN])))
        self._guard(state).accountant(state, plan, str(payload.config.get(keys.DP_RUN, "")))
        return Payload(config={keys.PARTY: self.party.name})

    def _encode(self, payload: Payload, state: Weights) -> tuple[Payload, Weights]:
        """Fit encoders and autoencoder on the aligned rows; release each row's latent once (see module doc)."""
        c = payload.config
        seed, table = int(c[keys.RUN + ".seed"]), self._aligned(state)
        fit_options = json.loads(str(c[keys.RUN + ".encoders"]))
        ae_options = json.loads(str(c[keys.RUN + ".options"]))
        epochs, batch = float(c[keys.RUN + ".epochs"]), int(c[keys.RUN + ".batch_size"])
        if keys.DP_PLAN not in c:
            refuse_without_plan(self.party.policy, self.party.name, "the latent release")
            plan = fit_party_plan(table, seed=seed, options=fit_options)
            encoded = plan.encode(table.frame, numpy_rng(seed, "encode", self.party.name))
            decoder, _ = train_autoencoder(plan, encoded, party=self.party.name, seed=seed, options=ae_options,
                                           epochs=epochs, batch_size=batch, privacy=None)
            return self._reply(row_latents(decoder, encoded), decoder, state, None)
        return self._encode_private(payload, state, table, seed, fit_options, ae_options, epochs)

    def _encode_private(self, payload: Payload, state: Weights, table: PartyTable, seed: int, fit_options: dict,
                        ae_options: dict, epochs: float) -> tuple[Payload, Weights]:
        c = payload.config
        plan_dp = PrivacyPlan.from_dict(json.loads(str(c[keys.DP_PLAN])))
        run_id, state = str(c.get(keys.DP_RUN, "")), with_noise_seed(state)
        guard = self._guard(state)
        accountant = guard.accountant(state, plan_dp, run_id)
        secret = noise_seed(state)
        plan = fit_party_plan(table, seed=seed, options=fit_options, noise_multiplier=plan_dp.encoder_noise_multiplier,
                              answer=lambda request: private_statistics(table, request, plan=plan_dp, accountant=accountant,
                                                                        noise_seed=secret, seed=seed))
        encoded = plan.encode(plan.imputed(table.frame), numpy_rng(seed, "encode", self.party.name))
        privacy = TrainingPrivacy(noise_multiplier=plan_dp.noise_multiplier, sample_rate=plan_dp.sample_rate,
                                  max_grad_norm=float(c[keys.DP_MAX_GRAD_NORM]), accountant_state=accountant.state_dict(),
                                  steps=plan_dp.steps, noise_seed=secret)
        decoder, spent = train_autoencoder(plan, encoded, party=self.party.name, seed=seed, options=ae_options,
                                           epochs=epochs, batch_size=plan_dp.batch_size, privacy=privacy)
        accountant = PartyAccountant.from_state_dict(spent or {})
        latents = private_latents(row_latents(decoder, encoded), noise_multiplier=float(plan_dp.encoder_noise_multiplier or 0),
                                  accountant=accountant, rng=numpy_rng(secret, "latent-noise", self.party.name))
        check_release(plan_dp, accountant, "latent release")
        return self._reply(latents, decoder, guard.keep(state, accountant, run_id), accountant)

    def _reply(self, latents: np.ndarray, decoder: PartyDecoder, state: Weights,
               accountant: PartyAccountant | None) -> tuple[Payload, Weights]:
        """Keep the decoder (state and the party's own folder); send the latents and, under DP, the accountant."""
        blob = decoder.to_bytes()
        if self.party.decoder_dir is not None:
            Path(self.party.decoder_dir).mkdir(parents=True, exist_ok=True)
            Path(self.party.decoder_dir, decoder_file(self.party.name)).write_bytes(blob)
        config = {} if accountant is None else {keys.DP_REPORT: json.dumps(accountant.state_dict())}
        reply = Payload(arrays={keys.LATENTS: latents.astype(np.float32)}, config=config,
                        metrics={keys.NUM_EXAMPLES: float(len(latents))})
        return reply, {**state, keys.DECODER_STATE: np.frombuffer(blob, dtype=np.uint8)}

    def _decode(self, payload: Payload, state: Weights) -> Payload:
        """Synthetic latents in, this party's synthetic columns out, spelled as its own file spells them."""
        if keys.DECODER_STATE not in state:
            raise PartyError(f"Party {self.party.name!r} has no decoder yet: the latent round must run before sampling.")
        decoder = PartyDecoder.from_bytes(state[keys.DECODER_STATE].tobytes())
        frame = decode_party(decoder, payload.arrays[keys.LATENTS], seed=int(payload.config[keys.RUN + ".seed"]))
        return Payload(arrays={keys.SYNTHETIC: frame_bytes(frame)})


def decode_party(decoder: PartyDecoder, latents: np.ndarray, *, seed: int) -> pd.DataFrame:
    """The party's released synthetic columns: decoded, then spelled as its file spells them (shared by the
    decode round and the SDK)."""
    return spell(decode_latents(decoder, latents, seed=seed), decoder.plan.schema)


def check_keys(table: PartyTable, key_columns: tuple[str, ...]) -> None:
    """Every key column present, complete and unique at this party: checked before anything row-level leaves."""
    missing = [k for k in key_columns if k not in table.frame.columns]
    if missing:
        raise PartyError(f"Party {table.name!r} has no key column {missing[0]!r} (its columns: {list(table.frame.columns)}). "
                         f"Every party needs the key columns {list(key_columns)}; add the column or fix --key.")
    keys_frame = table.frame[list(key_columns)]
    empty = [k for k in key_columns if keys_frame[k].isna().any()]
    if empty:
        raise PartyError(f"Key column {empty[0]!r} of party {table.name!r} has {int(keys_frame[empty[0]].isna().sum())} "
                         "empty cells; every row needs a key. Fill or drop those rows.")
    duplicated = int(keys_frame.duplicated().sum())
    if duplicated:
        raise PartyError(f"Key column {', '.join(map(repr, key_columns))} of party {table.name!r} holds {duplicated} "
                         "duplicated keys; a key must name one person once. Deduplicate the party's rows.")
    if len(table.frame.columns) == len(key_columns):
        raise PartyError(f"Party {table.name!r} holds only its key columns {list(key_columns)}; it has nothing to model. "
                         "Drop it from the run or add its columns.")


def modelled_schema(schema: TableSchema, key_columns: tuple[str, ...]) -> TableSchema:
    """The party's schema without its keys: keys are never modelled and never appear in the output."""
    return TableSchema(tuple(c for c in schema if c.name not in key_columns))


def decoder_file(party: str) -> str:
    return f"decoder-{party}.npz"


def frame_bytes(frame: pd.DataFrame) -> np.ndarray:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8)


def frame_from_bytes(blob: np.ndarray) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(blob.tobytes()))
