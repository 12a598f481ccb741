"""fedtab for data stewards: choose parties, check the schema, run the federation, download the result.

Pages hold no business logic: every step is one SDK call.
"""

from __future__ import annotations

import io
import tempfile
import threading
from pathlib import Path

import pandas as pd
import streamlit as st

from fedtab.config import PARTY_EPSILON_HELP, FedtabConfig
from fedtab.connectors import load_party, reconcile
from fedtab.connectors.public_domain import read_public_domain
from fedtab.demo import demo_config, demo_parties, demo_public_domain_path
from fedtab.errors import FedtabError
from fedtab.federation.coordinator import metrics_text
from fedtab.privacy.ledger import PrivacyLedger
from fedtab.synthesizer import FederatedSynthesizer

DEMO = "Demo federation (3 clinics from UCI Adult)"
UPLOAD = "Upload one table per party"


def party_sources() -> dict[str, Path]:
    choice = st.radio("Parties", [DEMO, UPLOAD], key="source")
    if choice == DEMO:
        return demo_parties()
    files = st.file_uploader("CSV or Parquet, one file per party (the file name is the party's name)",
                             type=["csv", "parquet", "gz"], accept_multiple_files=True, key="uploads")
    folder = Path(st.session_state.setdefault("upload_dir", tempfile.mkdtemp(prefix="fedtab-app-")))
    sources = {}
    for upload in files or []:
        path = folder / upload.name
        path.write_bytes(upload.getvalue())
        sources[upload.name.split(".")[0]] = path
    return sources


def settings_form(default: FedtabConfig) -> tuple[FedtabConfig, str]:
    columns = st.columns(4)
    rounds = columns[0].number_input("Rounds", 1, 500, default.rounds, key="rounds")
    epochs = columns[1].number_input("Local epochs per round", 0.1, 50.0, float(default.local_epochs), key="epochs")
    seed = columns[2].number_input("Seed", 0, 2**31 - 1, default.seed, key="seed")
    rows = columns[3].number_input("Synthetic rows (0 = as many as the parties hold)", 0, 10_000_000, 0, key="rows")
    with st.expander("Privacy"):
        privacy = privacy_settings(default)
    with st.expander("Advanced"):
        engine = st.selectbox("Engine", ["simulation", "local"], key="engine",
                              help="simulation: Flower's simulation engine, one virtual node per party; local: in-process.")
    config = default.replace(rounds=int(rounds), local_epochs=float(epochs), seed=int(seed), rows=int(rows) or None, **privacy)
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
        path = Path(st.session_state.setdefault("upload_dir", tempfile.mkdtemp(prefix="fedtab-app-"))) / upload.name
        path.write_bytes(upload.getvalue())
        return read_public_domain(path)
    if st.session_state.get("source", DEMO) == DEMO and st.checkbox(
            "Declare Adult's code book (published categories and bounds) as public", key="demo_domain"):
        return read_public_domain(demo_public_domain_path())
    return None


@st.cache_data(show_spinner=False)
def schema_table(sources: tuple[tuple[str, str], ...]) -> pd.DataFrame:
    schema = reconcile([load_party(name, path) for name, path in sources])
    return pd.DataFrame([{"column": c.name, "kind": c.kind.value, "dtype": c.dtype, "missing": c.has_missing, "note": c.note} for c in schema])


def run(sources: dict[str, Path], config: FedtabConfig, engine: str) -> None:
    bar = st.progress(0.0, text="Starting the federation…")
    context = _script_context()

    def progress(stage: str, done: int, total: int, record: dict) -> None:
        _attach(context)
        if stage == "encoders":
            bar.progress(0.0, text=f"Encoder statistics, round {done}")
        else:
            bar.progress(done / total, text=f"Training round {done}/{total}  {metrics_text(record, ', ')}")

    synthesizer = FederatedSynthesizer(config, engine=engine).fit(sources, progress=progress)
    st.session_state["synthetic"] = synthesizer.sample()
    model = io.BytesIO()
    with tempfile.TemporaryDirectory() as folder:
        model.write(synthesizer.save(Path(folder) / "model.fedtab").read_bytes())
    st.session_state["model"] = model.getvalue()
    st.session_state["state"] = synthesizer.state_


def results() -> None:
    synthetic: pd.DataFrame = st.session_state["synthetic"]
    state = st.session_state["state"]
    st.subheader("Synthetic table")
    st.write(f"{len(synthetic):,} rows × {synthetic.shape[1]} columns from {len(state.parties)} parties "
             f"({', '.join(f'{k}: {v:,}' for k, v in state.parties.items())}). No party's rows left its site.")
    st.subheader("Privacy")
    lines = PrivacyLedger.from_dict(state.ledger).summary_lines() if state.ledger else [
        "No differential privacy: turn it on under Privacy before the run."]
    st.code("\n".join(lines), language=None)
    for note in state.plan.notes:
        st.info(note)
    for warning in state.warnings:
        st.warning(warning)
    st.dataframe(synthetic.head(50))
    buffer = io.BytesIO()
    synthetic.to_parquet(buffer, index=False)
    cols = st.columns(3)
    cols[0].download_button("Download CSV", synthetic.to_csv(index=False), "synthetic.csv", "text/csv")
    cols[1].download_button("Download Parquet", buffer.getvalue(), "synthetic.parquet")
    cols[2].download_button("Download model", st.session_state["model"], "model.fedtab")


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
    sources = party_sources()
    if not sources:
        st.stop()
    try:
        config, engine = settings_form(demo_config() if st.session_state.get("source", DEMO) == DEMO else FedtabConfig())
        st.subheader("Schema, reconciled across parties")
        st.dataframe(schema_table(tuple((k, str(v)) for k, v in sources.items())), hide_index=True)
        if st.button("Run the federation", type="primary", key="run"):
            run(sources, config, engine)
    except FedtabError as error:
        st.error(str(error))
        st.stop()
    if "synthetic" in st.session_state:
        results()


main()
