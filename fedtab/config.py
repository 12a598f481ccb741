"""One validated, frozen configuration shared by the SDK, the CLI, the app and the Flower apps."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from fedtab.connectors.public_domain import domain_problems
from fedtab.errors import ConfigError
from fedtab.schema import ColumnKind

AGGREGATIONS = ("fedavg", "similarity", "similarity-softmax", "median", "trimmed-mean", "krum")
UPDATE_BITS = (32, 16, 8)
ROBUST_AGGREGATIONS = ("median", "trimmed-mean", "krum")
ACCOUNTANTS = ("prv", "rdp")
DEVICES = ("cpu", "cuda", "auto")
PARTY_CLIP = 0.5
"""Measured on the demo federation (CTGAN defaults, 30 rounds of 1 epoch): a party's update has L2
norm 0.2-0.4 once training settles (about 0.1 per Adam step, 2-4 steps a round) and up to 11 in the
first rounds, while BatchNorm's running statistics leave their initial values. 0.5 leaves the
settled updates unclipped; the noise grows with the clip, so a larger one only adds noise."""


PARTY_EPSILON_HELP = (
    "Party-level DP budget (ε over all rounds) hiding one whole party's model updates: Flower's fixed clipping "
    "and its RDP accountant; omit for none. Composes with --epsilon. Limits: FedAvg only, with equal party "
    "weights instead of row-count weights; no subsampling amplification (every party takes part in every round); "
    "covers the model updates only: the encoder statistics (bounds, category counts, histograms) are protected "
    "per record by --epsilon, not per party, and the model file lists each party's row count; with few parties "
    "the noise on the mean update is large (std = noise multiplier x clip / parties per weight)."
)
"""What party-level DP covers and its limits, shown wherever the option is offered (CLI help, app)."""


@dataclass(frozen=True)
class FedtabConfig:
    """Every knob of a run, checked once here.

    Parameters mirror the CLI flags; ``model_options`` holds the chosen model's own settings
    (its defaults live with the model plugin). ``epsilon``/``delta`` protect one row of one party
    (record-level); ``party_epsilon``/``party_delta``/``party_clip`` protect one whole party's
    model updates (party-level); both may be set.
    """

    model: str = "argn"
    """The model plugin; argn (autoregressive) by default: the best fidelity and train-on-synthetic utility fedtab
    measured (benchmarks/RESULTS_ARGN.md, RESULTS_PRODUCT.md). ``ctgan`` and ``tvae`` stay selectable."""
    rounds: int = 30
    local_epochs: float = 1.0
    batch_size: int = 500
    local_steps: int | None = None
    """Optimizer steps each party takes per round, whatever its size (replaces local_epochs; not under DP)."""
    seed: int = 0
    rows: int | None = None
    aggregation: str = "fedavg"
    server_lr: float = 1.0
    """Server learning rate on the averaged update: w + server_lr·(mean − w); 1 is plain FedAvg."""
    model_options: Mapping[str, Any] = field(default_factory=dict)
    max_categories: int = 1000
    min_category_count: int = 1
    bgm_components: int = 10
    bgm_sample_cap: int = 20_000
    bgm_max_rounds: int = 20
    epsilon: float | None = None
    delta: float | None = None
    encoder_share: float = 0.3
    accountant: str = "prv"
    max_grad_norm: float = 1.0
    party_epsilon: float | None = None
    """Party-level DP budget over all rounds (Flower's fixed clipping + RDP accountant); None: off.

    Limits, from the accountant Flower ships: FedAvg only, with equal party weights instead of
    row-count weights; no subsampling amplification (every party takes part in every round). It
    covers the model updates only: the encoder statistics (bounds, category counts, the histograms
    the mixtures are fitted on) are protected per record by ``epsilon``, not per party, and the
    model file lists each party's row count. With few parties the noise on the mean update is
    large: std = z * party_clip / parties on every weight, z planned from (ε, δ, rounds).
    """
    party_delta: float | None = None
    """Party-level δ; None: min(1e-5, 0.1 / parties), i.e. 1e-5 for any federation under 10,000 parties."""
    party_clip: float = PARTY_CLIP
    """L2 bound on one party's update (its weights minus the round's global weights, all float arrays)."""
    holdout_share: float = 0.0
    round_timeout: float = 600.0
    num_cpus_per_party: float = 1.0
    public_domain: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Bounds and categories known without the data (TOML ``[public.<column>]``); DP spends nothing on them."""
    checkpoint: str | None = None
    party_budgets: Mapping[str, float] = field(default_factory=dict)
    """Each named party's own ε (its ``PartyPolicy``); parties not named allow ``epsilon``. The server's
    plan is only a proposal: a party refuses one its own accountant finds over its budget."""
    require_dp: bool | None = None
    """Parties refuse requests without a privacy plan; None: on for every party with a budget."""
    party_state_dir: str | None = None
    """Where each party keeps its privacy record of a run; None: next to the checkpoint (only when checkpointing)."""
    columns: Mapping[str, str] = field(default_factory=dict)
    """Column -> kind ("categorical", "numerical", "boolean", "datetime", "id") set by the user; wins over
    inference at every party (CLI ``--column NAME=KIND``, TOML ``[columns.NAME] kind = "..."``)."""
    target: str | None = None
    """A column the synthetic table must keep predictable (categorical or boolean); the model conditions on it."""
    min_parties: int | None = None
    """Usable updates a training round needs to go on without the parties that failed or were rejected; None:
    max(2, ⌈P/2⌉). Below it the run stops with a checkpoint to resume from. Schema, plan and encoder rounds
    always need every party."""
    update_checks: bool = True
    """The server's checks on every update before aggregation: finite values, length (``norm_tolerance``), row
    claims bounded by what the party declared. Off only to see what a hostile party does without them."""
    norm_tolerance: float | None = 10.0
    """Reject an update longer than this many times the median party's (with 3 or more parties); None: no length check."""
    update_bits: int = 32
    """Bits per value of the model updates on the wire: 32 (as they are), 16 (float16 deltas) or 8 (quantised deltas)."""
    vertical: bool = False
    """Parties hold different columns about the same people (joined on ``key_columns``); see vertical_coordinator."""
    key_columns: tuple[str, ...] = ()
    """Vertical runs: the columns that name a person at every party (aligned by PSI, never modelled)."""
    vertical_min_rows: int = 50
    """Vertical runs: the fewest people the parties' intersection may hold before the run is refused."""
    latent_dim: int = 8
    """Vertical runs: width of each party's latent (its autoencoder's bottleneck); ``model`` models the latents."""
    latent_hidden: int = 128
    """Vertical runs: width of the two hidden layers of each party's autoencoder."""
    secure_aggregation: bool = False
    """Encoder statistics and FedAvg's training updates reach the server only as sums over parties (SecAgg+,
    ``fedtab.federation.secure_sum``; rules that need one party's update are refused), and under DP each party adds a share of the noise (σ/√(P − T)) so the sum carries it once. Needs epsilon and
    declared categories; trusts an honest-but-curious server and at most ``secure_dropouts`` colluding or lost parties."""
    secure_dropouts: int | None = None
    """T: parties that may drop out of a secure sum or collude with the server (< P/2); None: 1 with 3+ parties."""
    device: str = "cpu"
    """Where every party trains and sampling runs: "cpu", "cuda" (an error without a GPU) or "auto" (a GPU if
    torch finds one, else the CPU with a warning). Not run-defining: a resumed or loaded model may change it."""

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ConfigError("Invalid fedtab configuration:\n" + "\n".join(f"  - {p}" for p in problems))
        object.__setattr__(self, "model_options", dict(self.model_options))
        object.__setattr__(self, "public_domain", {str(k): dict(v) for k, v in self.public_domain.items()})
        object.__setattr__(self, "party_budgets", {str(k): float(v) for k, v in self.party_budgets.items()})
        object.__setattr__(self, "columns", {str(k): _kind_word(v) for k, v in self.columns.items()})
        object.__setattr__(self, "key_columns", tuple(self.key_columns))

    def _problems(self) -> list[str]:
        out: list[str] = []

        def need(ok: bool, name: str, rule: str) -> None:
            if not ok:
                out.append(f"'{name}' must be {rule}; got {getattr(self, name)!r}. Fix it in the config or flag.")

        need(isinstance(self.model, str) and bool(self.model), "model", "a model name such as 'ctgan'")
        need(_is_int(self.rounds) and self.rounds >= 1, "rounds", "an int >= 1")
        need(_is_number(self.local_epochs) and self.local_epochs > 0, "local_epochs", "a number > 0")
        need(_is_int(self.batch_size) and self.batch_size >= 2, "batch_size", "an int >= 2")
        need(self.local_steps is None or (_is_int(self.local_steps) and self.local_steps >= 1), "local_steps", "None or an int >= 1")
        if self.local_steps is not None and self.epsilon is not None:
            out.append(f"'local_steps' ({self.local_steps}) cannot be used with epsilon: the DP plan counts local "
                       "epochs. Set local_epochs instead, or drop epsilon.")
        need(_is_int(self.seed) and self.seed >= 0, "seed", "an int >= 0")
        need(self.rows is None or (_is_int(self.rows) and self.rows >= 1), "rows", "None or an int >= 1")
        need(self.aggregation in AGGREGATIONS, "aggregation", f"one of {AGGREGATIONS}")
        need(_is_number(self.server_lr) and 0 < self.server_lr <= 10, "server_lr", "a number in (0, 10]")
        need(isinstance(self.model_options, Mapping), "model_options", "a table of model settings")
        need(_is_int(self.max_categories) and self.max_categories >= 2, "max_categories", "an int >= 2")
        need(_is_int(self.min_category_count) and self.min_category_count >= 1, "min_category_count", "an int >= 1")
        need(_is_int(self.bgm_components) and 1 <= self.bgm_components <= 50, "bgm_components", "an int in [1, 50]")
        need(_is_int(self.bgm_sample_cap) and self.bgm_sample_cap >= 100, "bgm_sample_cap", "an int >= 100")
        need(_is_int(self.bgm_max_rounds) and self.bgm_max_rounds >= 1, "bgm_max_rounds", "an int >= 1")
        need(self.epsilon is None or (_is_number(self.epsilon) and self.epsilon > 0), "epsilon", "None or a number > 0")
        need(self.delta is None or (_is_number(self.delta) and 0 < self.delta < 1), "delta", "None or a number in (0, 1)")
        need(_is_number(self.encoder_share) and 0 < self.encoder_share < 1, "encoder_share", "a number in (0, 1)")
        need(self.accountant in ACCOUNTANTS, "accountant", f"one of {ACCOUNTANTS}")
        need(_is_number(self.max_grad_norm) and self.max_grad_norm > 0, "max_grad_norm", "a number > 0")
        out.extend(self._party_dp_problems())
        need(_is_number(self.holdout_share) and 0 <= self.holdout_share <= 0.5, "holdout_share", "a number in [0, 0.5]")
        need(_is_number(self.round_timeout) and self.round_timeout > 0, "round_timeout", "a number of seconds > 0")
        need(_is_number(self.num_cpus_per_party) and self.num_cpus_per_party > 0, "num_cpus_per_party", "a number > 0")
        out += domain_problems(self.public_domain)
        need(self.checkpoint is None or (isinstance(self.checkpoint, str) and bool(self.checkpoint.strip())),
             "checkpoint", "None or a file path to write the run's checkpoint to")
        need(self.target is None or (isinstance(self.target, str) and bool(self.target.strip())),
             "target", "None or the name of a categorical column")
        out.extend(self._party_policy_problems())
        out += _column_kind_problems(self.columns)
        need(self.device in DEVICES, "device", f"one of {DEVICES} (auto: a GPU when torch finds one, else the CPU)")
        need(self.min_parties is None or (_is_int(self.min_parties) and self.min_parties >= 1), "min_parties", "None or an int >= 1")
        need(isinstance(self.update_checks, bool), "update_checks", "true or false")
        need(self.norm_tolerance is None or (_is_number(self.norm_tolerance) and self.norm_tolerance > 1), "norm_tolerance",
             "None or a number > 1")
        need(self.update_bits in UPDATE_BITS and _is_int(self.update_bits), "update_bits", f"one of {UPDATE_BITS}")
        out += self._vertical_problems()
        out += self._secure_problems()
        return out

    def _secure_problems(self) -> list[str]:
        out = []
        if not isinstance(self.secure_aggregation, bool):
            out.append(f"'secure_aggregation' must be true or false; got {self.secure_aggregation!r}. Fix it in the config or flag.")
        if not (self.secure_dropouts is None or (_is_int(self.secure_dropouts) and self.secure_dropouts >= 0)):
            out.append(f"'secure_dropouts' must be None or an int >= 0; got {self.secure_dropouts!r}. Fix it in the config or flag.")
        if self.secure_aggregation is True and (self.epsilon is None or self.vertical or self.aggregation.startswith("similarity")):
            out.append("'secure_aggregation' sums the encoder statistics of a private horizontal fit: it needs epsilon (the "
                       "exact fit also releases each party's minima, maxima and labels, which are not sums), no vertical, "
                       f"and an aggregation that does not compare single parties (got epsilon={self.epsilon!r}, "
                       f"vertical={self.vertical!r}, aggregation={self.aggregation!r}). Set --epsilon, or drop --secure-aggregation.")
        singles = {"aggregation": self.aggregation in ROBUST_AGGREGATIONS, "update_bits": self.update_bits != 32,
                   "party_epsilon": self.party_epsilon is not None}
        if self.secure_aggregation is True and any(singles.values()):
            named = ", ".join(f"{k}={getattr(self, k)!r}" for k, bad in singles.items() if bad)
            out.append(f"'secure_aggregation' sums the training updates, so the server never holds one party's update; "
                       f"{named} needs each party's update on the server (robust rules rank them, compressed updates "
                       "carry per-party ranges, party-level DP clips each). Use aggregation 'fedavg', update_bits 32 and no "
                       "party_epsilon, or drop --secure-aggregation.")
        return out

    def _vertical_problems(self) -> list[str]:
        out = []
        keys_ok = isinstance(self.key_columns, (tuple, list)) and all(isinstance(k, str) and k.strip() for k in self.key_columns)
        if not keys_ok:
            out.append(f"'key_columns' must be a list of column names; got {self.key_columns!r}. Fix it in the config or --key.")
        elif self.vertical and not self.key_columns:
            out.append("'vertical' is on but no key column is set; name the column every party identifies people by "
                       "(--key person_id or key_columns = [\"person_id\"]).")
        elif self.key_columns and not self.vertical:
            out.append(f"'key_columns' {list(self.key_columns)} is set but 'vertical' is off; key columns join a vertical "
                       "run only. Add --vertical, or drop --key.")
        if self.vertical and (self.party_epsilon is not None or self.holdout_share or self.target is not None):
            out.append("A vertical run does not support party_epsilon, holdout_share or target; drop them (record-level "
                       "--epsilon is supported).")
        for name, low in (("vertical_min_rows", 1), ("latent_dim", 1), ("latent_hidden", 2)):
            value = getattr(self, name)
            if not (_is_int(value) and value >= low):
                out.append(f"'{name}' must be an int >= {low}; got {value!r}. Fix it in the config or flag.")
        return out

    def _party_policy_problems(self) -> list[str]:
        out = []
        budgets = self.party_budgets
        if not (isinstance(budgets, Mapping) and all(isinstance(k, str) and k and _is_number(v) and v > 0
                                                     for k, v in budgets.items())):
            out.append(f"'party_budgets' must map party names to ε > 0 (e.g. {{clinic_a = 1.0}}); got {budgets!r}. "
                       "Fix it in the config or --party-budget NAME=EPS.")
        if self.require_dp not in (None, True, False):
            out.append(f"'require_dp' must be true, false or unset; got {self.require_dp!r}. Fix it in the config or flag.")
        elif self.require_dp is True and self.epsilon is None and not budgets:
            out.append("'require_dp' is on but 'epsilon' is not set, so parties without their own budget could accept "
                       "no plan. Set --epsilon (every party's default budget) or give every party --party-budget.")
        need_dir = self.party_state_dir is None or (isinstance(self.party_state_dir, str) and bool(self.party_state_dir.strip()))
        if not need_dir:
            out.append(f"'party_state_dir' must be None or a folder path; got {self.party_state_dir!r}. Fix it in the config or flag.")
        return out

    def _party_dp_problems(self) -> list[str]:
        out = []
        if not (self.party_epsilon is None or (_is_number(self.party_epsilon) and self.party_epsilon > 0)):
            out.append(f"'party_epsilon' must be None or a number > 0; got {self.party_epsilon!r}. Fix it in the config or flag.")
        if not (self.party_delta is None or (_is_number(self.party_delta) and 0 < self.party_delta < 1)):
            out.append(f"'party_delta' must be None or a number in (0, 1); got {self.party_delta!r}. Fix it in the config or flag.")
        if not (_is_number(self.party_clip) and self.party_clip > 0):
            out.append(f"'party_clip' must be a number > 0; got {self.party_clip!r}. Fix it in the config or flag.")
        if self.party_delta is not None and self.party_epsilon is None:
            out.append(f"'party_delta' is {self.party_delta!r} but 'party_epsilon' is not set, so party-level DP is off. "
                       "Set party_epsilon too, or drop party_delta.")
        if self.party_epsilon is not None and self.aggregation != "fedavg":
            out.append(f"Party-level DP (party_epsilon) needs aggregation 'fedavg' (equal party weights, the only "
                       f"aggregation Flower's accountant covers); got aggregation {self.aggregation!r}. "
                       "Set aggregation = 'fedavg', or drop party_epsilon.")
        return out

    @property
    def private(self) -> bool:
        return self.epsilon is not None

    def replace(self, **changes: Any) -> FedtabConfig:
        """A copy with some values changed; ``None`` values are ignored so CLI flags left unset keep the file's."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FedtabConfig:
        known = {f.name for f in fields(cls)}
        flat = _flatten_sections(data)
        unknown = sorted(set(flat) - known)
        if unknown:
            raise ConfigError(
                f"Unknown configuration keys {unknown}; expected some of {sorted(known)}. "
                "Check the spelling (use snake_case)."
            )
        return cls(**flat)

    @classmethod
    def from_toml(cls, path: str | Path) -> FedtabConfig:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"Config file '{path}' does not exist. Pass an existing fedtab.toml.") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Config file '{path}' is not valid TOML: {exc}. Fix the file.") from exc
        return cls.from_dict(data)


def _flatten_sections(data: Mapping[str, Any]) -> dict[str, Any]:
    """Accept ``[run]``/``[privacy]``/``[encoders]`` sections and ``[model.options]`` as well as flat keys."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        key = key.replace("-", "_")
        if key == "model" and isinstance(value, Mapping):
            model_table = dict(value)
            if "name" in model_table:
                flat["model"] = model_table.pop("name")
            flat["model_options"] = model_table.pop("options", model_table)
        elif key == "public":
            flat["public_domain"] = value
        elif key == "columns" and isinstance(value, Mapping):
            flat["columns"] = {name: _toml_kind(name, spec) for name, spec in value.items()}
        elif key in {"run", "privacy", "encoders", "federation"} and isinstance(value, Mapping):
            flat.update({k.replace("-", "_"): v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def _kind_word(kind: Any) -> str:
    """The word users write for a kind: ColumnKind members and 'Categorical' alike become 'categorical'."""
    return str(getattr(kind, "value", kind)).strip().lower()


def _column_kind_problems(columns: Any) -> list[str]:
    if not isinstance(columns, Mapping):
        return [f"'columns' must be a table of column -> kind; got {columns!r}. Write e.g. columns={{'SEX': 'categorical'}}."]
    known = [k.value for k in ColumnKind]
    return [f"column '{name}': kind {kind!r} is not one of {known}. Fix it in --column, [columns.{name}] or columns="
            for name, kind in columns.items() if _kind_word(kind) not in known]


def _toml_kind(name: str, spec: Any) -> Any:
    """``[columns.SEX] kind = "categorical"`` or ``[columns] SEX = "categorical"``."""
    if not isinstance(spec, Mapping):
        return spec
    extra = sorted(set(spec) - {"kind"})
    if extra or "kind" not in spec:
        raise ConfigError(f"[columns.{name}] takes one key, kind (e.g. kind = \"categorical\"); got keys {sorted(spec)}.")
    return spec["kind"]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
