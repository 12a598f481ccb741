"""fedtab for data stewards: parties -> schema with editable kinds -> privacy -> run -> evaluation -> downloads.

Horizontal (every party holds the same columns for different people) or vertical (each party holds
different columns about the same people, joined on key columns by private set intersection).

Pages hold no business logic: every step is one SDK call. Results belong to the parties they came
from: choosing other parties clears them. Uploads live in one temporary folder per session, removed
when the session ends.
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from fedtab.config import PARTY_EPSILON_HELP, FedtabConfig
from fedtab.connectors import load_party, reconcile
from fedtab.connectors.inference import CODED_NOTE
from fedtab.connectors.public_domain import read_public_domain
from fedtab.connectors.sdv_metadata import PERSONAL_NOTE, read_schema
from fedtab.demo import demo_config, demo_parties, demo_public_domain_path
from fedtab.errors import ConfigError, FedtabError
from fedtab.evaluation_run import EvaluationRequest
from fedtab.evaluators import evaluate
from fedtab.evaluators.files import read_table
from fedtab.privacy.ledger import PrivacyLedger
from fedtab.progress import metrics_text
from fedtab.schema import ColumnKind
from fedtab.synthesizer import FederatedSynthesizer

DEMO = "Demo federation (3 clinics from UCI Adult)"
UPLOAD = "Upload one table per party"
KINDS = [kind.value for kind in ColumnKind]
RESULT_KEYS = ("synthetic", "state", "model", "files", "report", "result_for", "vertical")
HORIZONTAL = "Horizontal: every party holds the same columns for different people"
VERTICAL = "Vertical: each party holds different columns about the same people"
NO_TARGET = "(no utility score)"
MODELS = {
    "argn": "Autoregressive (TabularARGN design), the default: the best fidelity and utility measured. Adult, 5 parties: "
            "quality 0.97, train-on-synthetic ROC-AUC 0.90; credit default: 0.78, as good as the real rows.",
    "ctgan": "Conditional GAN (Fed-TGAN's loop), the earlier default, to compare with SDV's CTGAN. Adult: quality 0.89, "
             "ROC-AUC 0.84 with the target declared; near chance (0.53) on credit default.",
    "tvae": "Variational autoencoder (CTGAN's TVAE blocks): quick to train and sample. Adult: quality 0.80, ROC-AUC 0.88; "
            "chance (0.50) on credit default.",
    "fedtabdiff": "Diffusion (FedTabDiff, TabDDPM-style): close to argn without privacy (Adult: quality 0.94, ROC-AUC 0.90), "
                  "slower to sample, weak under DP (use argn there).",
}
"""Each model with one line on why to pick it; figures from benchmarks/RESULTS_ARGN.md, RESULTS_PRODUCT.md, RESULTS.md, RESULTS_DIFFUSION.md."""
REPORT_HEIGHT = 1500
DP_REFUSAL = (
    "Federated evaluation is off under differential privacy: its scores are exact figures on the parties' rows that "
    "no ε covers, and every party refuses to compute them. What is allowed: evaluate centrally on this machine after "
    "the run (this app holds every party's file, as the examiner of `fedtab evaluate` would), against the parties' "
    "rows and, for utility and membership risk, real rows the run never saw."
)

VERTICAL_DP_REFUSAL = (
    "Federated evaluation is off under differential privacy: each party's scores would be exact figures on its rows that "
    "no ε covers, and every party refuses them once it has made DP releases. Evaluate afterwards where one examiner is "
    "allowed to join the parties' real columns (`fedtab evaluate --real joined.csv --synthetic synthetic.csv`)."
)


@dataclass(frozen=True)
class CentralEvaluation:
    """Under DP: score the written table on this machine, from the parties' files (``fedtab evaluate``'s way)."""

    target: str | None
    holdout: Path | None


def session_folder() -> Path:
    """This session's one temporary folder; its finalizer deletes it when the session's state goes."""
    if "upload_dir" not in st.session_state:
        st.session_state["upload_dir"] = tempfile.TemporaryDirectory(prefix="fedtab-app-")
    return Path(st.session_state["upload_dir"].name)


def party_sources(vertical: bool = False) -> dict[str, Path]:
    choice = st.radio("Parties", [DEMO, UPLOAD], key="source")
    if choice == DEMO:
        return demo_vertical_parties() if vertical else demo_parties()
    files = st.file_uploader("CSV or Parquet, one file per party (the file name is the party's name)",
                             type=["csv", "parquet", "gz"], accept_multiple_files=True, key="uploads")
    folder = session_folder() / "parties"
    folder.mkdir(exist_ok=True)
    sources = {}
    for upload in files or []:
        path = folder / upload.name
        path.write_bytes(upload.getvalue())
        sources[upload.name.split(".")[0]] = path
    return sources


def demo_vertical_parties() -> dict[str, Path]:
    """The demo's people split by columns over its three parties, with a person_id key (written once per session)."""
    from fedtab.demo import DEMO_PARTIES, vertical_split

    folder = session_folder() / "vertical-demo"
    if not folder.is_dir():
        folder.mkdir()
        people = pd.read_parquet(demo_parties()[DEMO_PARTIES[0]])
        for name, table in vertical_split(people, list(DEMO_PARTIES)).items():
            table.to_parquet(folder / f"{name}.parquet", index=False)
    return {name: folder / f"{name}.parquet" for name in DEMO_PARTIES}


def settings_form(default: FedtabConfig) -> tuple[FedtabConfig, str]:
    columns = st.columns(4)
    rounds = columns[0].number_input("Rounds", 1, 500, default.rounds, key="rounds")
    epochs = columns[1].number_input("Local epochs per round", 0.1, 50.0, float(default.local_epochs), key="epochs")
    seed = columns[2].number_input("Seed", 0, 2**31 - 1, default.seed, key="seed")
    rows = columns[3].number_input("Synthetic rows (0 = as many as the parties hold)", 0, 10_000_000, 0, key="rows")
    model = st.radio("Model", list(MODELS), index=list(MODELS).index(default.model), key="model_name",
                     captions=list(MODELS.values()), horizontal=True)
    with st.expander("Privacy"):
        privacy = privacy_settings(default)
    with st.expander("Advanced"):
        engine = st.selectbox("Engine", ["simulation", "local"], key="engine",
                              help="simulation: Flower's simulation engine, one virtual node per party; local: in-process.")
    config = default.replace(model=model, rounds=int(rounds), local_epochs=float(epochs), seed=int(seed), rows=int(rows) or None, **privacy)
    return config, engine


def privacy_settings(default: FedtabConfig) -> dict:
    """Record-level ε per party, the public domain, and the party-level option with its limits."""
    settings: dict = {}
    if st.checkbox("Record-level differential privacy (each party's rows)", key="dp"):
        columns = st.columns(2)
        settings["epsilon"] = float(columns[0].number_input("ε per party", 0.01, 100.0, 3.0, key="epsilon"))
        settings["encoder_share"] = float(columns[1].number_input(
            "Share of ε for encoder statistics", 0.01, 0.99, float(default.encoder_share), key="encoder_share"))
    settings["public_domain"] = public_domain()
    party_epsilon = st.number_input("Party-level ε (0 = off)", 0.0, 1000.0, 0.0, key="party_epsilon", help=PARTY_EPSILON_HELP)
    if party_epsilon > 0:
        settings["party_epsilon"] = float(party_epsilon)
        st.caption(PARTY_EPSILON_HELP)
    return settings


def public_domain() -> dict | None:
    """Bounds and categories known without the rows (a code book): DP spends nothing on them."""
    upload = st.file_uploader("Public domain (JSON or TOML: bounds and categories from a code book)",
                              type=["json", "toml"], key="domain")
    if upload is not None:
        path = session_folder() / upload.name
        path.write_bytes(upload.getvalue())
        return read_public_domain(path)
    if st.session_state.get("source", DEMO) == DEMO and st.checkbox(
            "Declare Adult's code book (published categories and bounds) as public", key="demo_domain"):
        return read_public_domain(demo_public_domain_path())
    return None


def metadata_file() -> str | None:
    """An optional SDV metadata JSON (SDV 1.x or 2.x) or fedtab schema: every column's kind at once."""
    upload = st.file_uploader("Metadata (optional): SDV metadata JSON or a fedtab schema", type=["json"], key="metadata")
    if upload is None:
        return None
    path = session_folder() / f"metadata-{upload.name}"
    path.write_bytes(upload.getvalue())
    return str(path)


@st.cache_data(show_spinner=False)
def schema_table(sources: tuple[tuple[str, str], ...], metadata: str | None = None) -> pd.DataFrame:
    declared = read_schema(metadata) if metadata else None
    schema = reconcile([load_party(name, path, metadata=declared) for name, path in sources])
    return pd.DataFrame([{"column": c.name, "kind": c.kind.value, "dtype": c.dtype, "missing": c.has_missing,
                          "note": c.note} for c in schema])


def schema_editor(inferred: pd.DataFrame) -> dict[str, str]:
    """The reconciled schema with an editable kind per column; returns the kinds the steward changed."""
    st.subheader("Schema, reconciled across parties")
    st.caption("Change a column's kind in the kind column; every party then reads the column that way.")
    edited = st.data_editor(
        inferred, key="kinds", hide_index=True,
        disabled=[c for c in inferred.columns if c != "kind"],
        column_config={"kind": st.column_config.SelectboxColumn("kind", options=KINDS, required=True)},
    )
    changed = {row.column: row.kind for row in edited.itertuples() if row.kind != inferred.set_index("column").at[row.column, "kind"]}
    coded = [r.column for r in inferred.itertuples() if r.note.startswith(CODED_NOTE) and r.column not in changed]
    personal = [r.column for r in inferred.itertuples() if r.note.startswith(PERSONAL_NOTE) and r.column not in changed]
    if coded:
        st.info(f"Read as categories (few small integer codes): {', '.join(coded)}. Set a kind above to change that.")
    if personal:
        st.warning(f"Personal data, not modelled (fresh values are generated): {', '.join(personal)}.")
    if changed:
        st.caption("Kinds you set: " + ", ".join(f"{k} = {v}" for k, v in changed.items()))
    return changed


def evaluation_request(columns: list[str], config: FedtabConfig) -> EvaluationRequest | CentralEvaluation | None:
    """Federated evaluation without DP; under DP the refusal said where it is offered, and the central way instead."""
    if config.private or config.party_epsilon is not None:
        st.info(DP_REFUSAL)
        if not st.checkbox("Evaluate centrally on this machine after the run", key="evaluate_central"):
            return None
        target = st.selectbox("Column to predict (utility)", [NO_TARGET, *columns], key="target")
        holdout = st.file_uploader("Held-out real rows the run never saw (optional: utility and membership risk)",
                                   type=["csv", "parquet", "gz"], key="holdout")
        path = None
        if holdout is not None:
            path = session_folder() / f"holdout-{holdout.name}"
            path.write_bytes(holdout.getvalue())
        return CentralEvaluation(target=None if target == NO_TARGET else target, holdout=path)
    if not st.checkbox("Evaluate the result (each party holds out 20 % of its rows and scores the table on them)",
                       key="evaluate"):
        return None
    target = st.selectbox("Column to predict (utility)", [NO_TARGET, *columns], key="target")
    return EvaluationRequest(target=None if target == NO_TARGET else target)


def central_report(sources: dict[str, Path], synthetic: Path, synthesizer: FederatedSynthesizer, request: CentralEvaluation):  # noqa: ANN201
    """``fedtab evaluate`` on the files this app holds: the parties' rows, the written table, the optional holdout."""
    real = pd.concat([read_table(path, name) for name, path in sorted(sources.items())], ignore_index=True)
    holdout = read_table(request.holdout, "holdout") if request.holdout is not None else None
    return evaluate(real, read_table(synthetic, "synthetic"), holdout=holdout, target=request.target,
                    schema=synthesizer.state_.plan.schema, seed=synthesizer.state_.config.seed)


def run(sources: dict[str, Path], config: FedtabConfig, engine: str, request: EvaluationRequest | CentralEvaluation | None,
        metadata: str | None) -> None:
    bar = st.progress(0.0, text="Starting the federation…")
    context = _script_context()

    def progress(stage: str, done: int, total: int, record: dict) -> None:
        _attach(context)
        if stage == "encoders":
            bar.progress(0.0, text=f"Encoder statistics, round {done}")
        else:
            bar.progress(done / total, text=f"Training round {done}/{total}  {metrics_text(record, ', ')}")

    declared = read_schema(metadata) if metadata else None
    federated = request if isinstance(request, EvaluationRequest) else None
    synthesizer = FederatedSynthesizer(config, engine=engine).fit(sources, progress=progress, evaluate=federated, metadata=declared)
    folder = Path(tempfile.mkdtemp(prefix="result-", dir=session_folder()))
    files = {name: synthesizer.write(folder / name).read_bytes() for name in ("synthetic.csv", "synthetic.parquet")}
    files["model.fedtab"] = synthesizer.save(folder / "model.fedtab").read_bytes()
    report = synthesizer.report_
    if isinstance(request, CentralEvaluation):
        bar.progress(1.0, text="Evaluating centrally on this machine…")
        report = central_report(sources, folder / "synthetic.csv", synthesizer, request)
    if report is not None:
        files["report.html"] = report.to_html(folder / "report.html").read_bytes()
    st.session_state.update(synthetic=synthesizer.sample(), state=synthesizer.state_, model=files["model.fedtab"],
                            files=files, report=report, result_for=_key(sources))


def results() -> None:
    synthetic: pd.DataFrame = st.session_state["synthetic"]
    state = st.session_state["state"]
    st.subheader("Synthetic table")
    st.write(f"{len(synthetic):,} rows × {synthetic.shape[1]} columns from {len(state.parties)} parties "
             f"({', '.join(f'{k}: {v:,}' for k, v in sorted(state.parties.items()))}). No party's rows left its site.")
    st.subheader("Privacy")
    lines = PrivacyLedger.from_dict(state.ledger).summary_lines() if state.ledger else [
        "No differential privacy: turn it on under Privacy before the run."]
    st.code("\n".join(lines), language=None)
    for note in state.plan.notes:
        st.info(note)
    for warning in state.warnings:
        st.warning(warning)
    files = st.session_state["files"]
    report = st.session_state.get("report")
    if report is not None:
        st.subheader("Evaluation")
        st.table(pd.DataFrame([{"area": v.area, "verdict": v.headline, "why": v.explanation} for v in report.verdicts]))
        st.caption("The report itself (also under Downloads): verdicts, key figures and every plot.")
        st.iframe(files["report.html"].decode(), height=REPORT_HEIGHT)
    st.dataframe(synthetic.head(50))
    cols = st.columns(len(files))
    for col, (name, data) in zip(cols, files.items()):
        col.download_button(f"Download {name.split('.')[-1].upper() if name.startswith('synthetic') else name}",
                            data, name, key=f"download_{name}", on_click="ignore")  # no rerun: the page stays as it is


def _key(sources: dict[str, Path]) -> tuple[tuple[str, str], ...]:
    """Which parties (names and files) a result came from."""
    return tuple(sorted((name, str(path)) for name, path in sources.items()))


def _result_key(sources: dict[str, Path], vertical: bool) -> tuple[tuple[str, str], ...]:
    """Which parties, and which kind of federation, a result came from."""
    return ((("federation", "vertical"),) if vertical else ()) + _key(sources)


def _forget_other_results(sources: dict[str, Path], vertical: bool = False) -> None:
    if st.session_state.get("result_for") not in (None, _result_key(sources, vertical)):
        for key in RESULT_KEYS:
            st.session_state.pop(key, None)


def _script_context():  # noqa: ANN202 - streamlit's internal type
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    return get_script_run_ctx()


def _attach(context) -> None:  # noqa: ANN001
    """Flower reports progress from its own thread; let that thread draw on this page."""
    if context is not None:
        from streamlit.runtime.scriptrunner import add_script_run_ctx

        add_script_run_ctx(threading.current_thread(), context)


def main() -> None:
    st.set_page_config(page_title="fedtab", layout="wide")
    st.title("fedtab: synthetic data from tables that stay with their owners")
    vertical = st.radio("Federation", [HORIZONTAL, VERTICAL], key="federation") == VERTICAL
    sources = party_sources(vertical)
    _forget_other_results(sources, vertical)
    if not sources:
        st.stop()
    if vertical:
        vertical_page(sources)
        return
    try:
        config, engine = settings_form(demo_config() if st.session_state.get("source", DEMO) == DEMO else FedtabConfig())
        metadata = metadata_file()
        inferred = schema_table(_key(sources), metadata)
        kinds = schema_editor(inferred)
        request = evaluation_request(inferred["column"].tolist(), config)
        if st.button("Run the federation", type="primary", key="run"):
            run(sources, config.replace(columns=kinds or None), engine, request, metadata)
    except FedtabError as error:
        st.error(str(error))
        st.stop()
    if "synthetic" in st.session_state:
        results()


def common_columns(sources: tuple[tuple[str, str], ...]) -> list[str]:
    """The columns every party's table has: the candidates for the key."""
    schemas = [party_schema(name, path) for name, path in sources]
    return [c for c in schemas[0]["column"] if all(c in set(s["column"]) for s in schemas[1:])]


@st.cache_data(show_spinner=False)
def party_schema(name: str, path: str) -> pd.DataFrame:
    schema = load_party(name, path).schema
    return pd.DataFrame([{"column": c.name, "kind": c.kind.value, "dtype": c.dtype, "missing": c.has_missing} for c in schema])


def key_picker(sources: dict[str, Path]) -> list[str]:
    """The key column(s) common to every party; a column whose name says id is offered first."""
    common = common_columns(_key(sources))
    if not common:
        st.error("No column is common to every party's table: a vertical run joins the parties on key columns they all "
                 "hold (e.g. person_id). Add the key to every table.")
        st.stop()
    guess = [c for c in common if "id" in c.lower().replace("-", "_").split("_")][:1] or common[:1]
    return st.multiselect("Key column(s), held by every party (never modelled, never written)", common, default=guess,
                          key="key_columns")


def vertical_schemas(sources: dict[str, Path], keys: list[str]) -> None:
    """Each party's own columns and kinds (its key columns left out)."""
    st.subheader("Each party's columns")
    for name, path in sorted(sources.items()):
        table = party_schema(name, str(path))
        st.caption(f"{name}: {len(table) - len(keys)} columns")
        st.dataframe(table[~table["column"].isin(keys)], hide_index=True, key=f"schema_{name}")


def vertical_page(sources: dict[str, Path]) -> None:
    """Vertical: key, per-party schema, settings, run, report; every step one SDK call."""
    try:
        config, engine = settings_form(FedtabConfig())
        keys = key_picker(sources)
        vertical_schemas(sources, keys)
        evaluate = vertical_evaluation_choice(config)
        if st.button("Run the federation", type="primary", key="run"):
            if not keys:
                raise ConfigError("Pick at least one key column: the column every party identifies people by.")
            run_vertical(sources, config.replace(vertical=True, key_columns=tuple(keys)), engine, evaluate)
    except FedtabError as error:
        st.error(str(error))
        st.stop()
    if st.session_state.get("vertical"):
        vertical_results()


def vertical_evaluation_choice(config: FedtabConfig) -> bool:
    if config.private:
        st.info(VERTICAL_DP_REFUSAL)
        return False
    return st.checkbox("Evaluate the result (each party scores its own columns against its own rows; pairs across "
                       "parties are listed as unavailable)", key="evaluate")


def run_vertical(sources: dict[str, Path], config: FedtabConfig, engine: str, evaluate: bool) -> None:
    import shutil

    from fedtab.vertical_synthesizer import VerticalSynthesizer

    with st.spinner("Aligning the parties by private set intersection, then training…"):
        synthesizer = VerticalSynthesizer(config, engine=engine).fit(sources, evaluate=evaluate)
    folder = Path(tempfile.mkdtemp(prefix="result-", dir=session_folder()))
    files = {name: synthesizer.write(folder / name).read_bytes() for name in ("synthetic.csv", "synthetic.parquet")}
    model = synthesizer.save(folder / "vertical_model")
    files["vertical_model.zip"] = Path(shutil.make_archive(str(model), "zip", model)).read_bytes()
    if synthesizer.report_ is not None:
        files["report.html"] = synthesizer.report_.to_html(folder / "report.html").read_bytes()
    st.session_state.update(synthetic=synthesizer.sample(), state=synthesizer.fit_, files=files, report=synthesizer.report_,
                            vertical=True, result_for=_result_key(sources, True))


def vertical_results() -> None:
    synthetic: pd.DataFrame = st.session_state["synthetic"]
    fit = st.session_state["state"]
    st.subheader("Synthetic table")
    st.write(f"{len(synthetic):,} rows × {synthetic.shape[1]} columns from {len(fit.parties)} parties "
             f"({'; '.join(f'{p}: {len(i.columns)} columns' for p, i in fit.parties.items())}); {fit.rows:,} people are "
             "in every party's table (private set intersection). No row and no key left its party.")
    st.subheader("Privacy")
    lines = PrivacyLedger.from_dict(fit.ledger).summary_lines() if fit.ledger else [
        "No differential privacy: turn it on under Privacy before the run."]
    st.code("\n".join(lines), language=None)
    files = st.session_state["files"]
    report = st.session_state.get("report")
    if report is not None:
        st.subheader("Evaluation, within each party")
        st.table(pd.DataFrame([{"party": p.party, "column shapes": round(p.column_shapes, 3),
                                "pair trends within the party": round(p.pair_trends, 3)} for p in report.parties]))
        st.caption(f"Pairs across parties ({len(report.cross_party_pairs)}) are not scored: "
                   f"{report.unavailable['cross-party pair trends']}")
        st.iframe(files["report.html"].decode(), height=REPORT_HEIGHT)
    st.dataframe(synthetic.head(50))
    cols = st.columns(len(files))
    for col, (name, data) in zip(cols, files.items()):
        col.download_button(f"Download {name.split('.')[-1].upper() if name.startswith('synthetic') else name}",
                            data, name, key=f"download_{name}", on_click="ignore")


main()
