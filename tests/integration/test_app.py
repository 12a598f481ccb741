"""The Streamlit app, driven headless: the demo federation runs and offers its downloads."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py"


def test_demo_run_shows_schema_result_and_downloads():
    at = AppTest.from_file(str(APP), default_timeout=300).run()
    assert not at.exception
    assert "age" in at.dataframe[0].value["column"].tolist()
    at.number_input(key="rounds").set_value(1)
    at.number_input(key="epochs").set_value(0.5)
    at.number_input(key="rows").set_value(123)
    at.selectbox(key="engine").select("local")
    assert at.radio(key="model_name").value == "argn" and list(at.radio(key="model_name").options) == ["argn", "ctgan", "tvae", "fedtabdiff"]
    at.button(key="run").click().run()
    assert not at.exception
    synthetic = at.session_state["synthetic"]
    assert len(synthetic) == 123 and "income" in synthetic.columns
    assert at.session_state["state"].config.model == "argn"
    assert any("123 rows" in m.value for m in at.markdown)



def test_a_private_run_with_the_code_book_shows_its_ledger():
    at = AppTest.from_file(str(APP), default_timeout=300).run()
    at.number_input(key="rounds").set_value(1)
    at.number_input(key="epochs").set_value(0.5)
    at.selectbox(key="engine").select("local")
    at.radio(key="model_name").set_value("ctgan")  # the earlier default stays selectable
    at.checkbox(key="dp").check().run()
    at.number_input(key="epsilon").set_value(2.0)
    at.checkbox(key="demo_domain").check()
    at.button(key="run").click().run()
    assert not at.exception
    state = at.session_state["state"]
    assert state.config.model == "ctgan" and state.config.epsilon == 2.0 and state.config.public_domain["age"] == {"bounds": [17, 90], "integer": True}
    assert not state.plan.notes  # the code book names every category: nothing fell into __rare__
    shown = "\n".join(block.value for block in at.code)
    assert "Differential privacy: record-level" in shown and "clinic_north: ε = " in shown


def test_the_party_level_option_states_its_limits_where_it_is_offered():
    at = AppTest.from_file(str(APP), default_timeout=300).run()
    at.number_input(key="party_epsilon").set_value(0.5).run()
    assert not at.exception
    assert any("Limits: FedAvg only" in c.value for c in at.caption)


def upload_parties(at: AppTest, rows: int = 300) -> None:
    """Two party CSVs cut from the demo federation, uploaded as a steward would."""
    import pandas as pd

    from fedtab.demo import demo_parties

    files = []
    for name, path in list(demo_parties().items())[:2]:
        files.append((f"{name}.csv", pd.read_parquet(path).head(rows).to_csv(index=False).encode(), "text/csv"))
    at.radio(key="source").set_value("Upload one table per party").run()
    at.file_uploader(key="uploads").set_value(files).run()


def small_run(at: AppTest) -> None:
    at.number_input(key="rounds").set_value(1)
    at.number_input(key="epochs").set_value(0.5)
    at.selectbox(key="engine").select("local")


def test_uploads_with_an_edited_kind_run_evaluate_and_offer_every_download():
    at = AppTest.from_file(str(APP), default_timeout=300).run()
    upload_parties(at)
    assert not at.exception
    columns = at.dataframe[0].value["column"].tolist()
    at.session_state["kinds"] = {"edited_rows": {columns.index("education-num"): {"kind": "categorical"}},
                                 "added_rows": [], "deleted_rows": []}
    small_run(at)
    at.checkbox(key="evaluate").check().run()
    at.selectbox(key="target").select("income")
    at.button(key="run").click().run()
    assert not at.exception, at.exception
    state = at.session_state["state"]
    assert state.config.columns == {"education-num": "categorical"} and set(state.parties) == {"clinic_north", "clinic_south"}
    assert state.plan.schema["education-num"].kind.value == "categorical"
    assert set(at.session_state["files"]) == {"synthetic.csv", "synthetic.parquet", "model.fedtab", "report.html"}
    assert {"fidelity", "utility"} <= set(at.table[0].value["area"])


def test_results_belong_to_their_parties_and_uploads_to_one_folder_per_session():
    import gc

    at = AppTest.from_file(str(APP), default_timeout=300).run()
    small_run(at)
    at.button(key="run").click().run()
    assert "synthetic" in at.session_state
    upload_parties(at)
    assert not at.exception
    assert "synthetic" not in at.session_state and not at.get("download_button")
    folder = Path(at.session_state["upload_dir"].name)
    at.run()
    assert Path(at.session_state["upload_dir"].name) == folder and (folder / "parties" / "clinic_north.csv").is_file()
    del at
    gc.collect()
    assert not folder.exists()


def test_sdv_metadata_marking_personal_data_is_announced_loudly():
    import json

    at = AppTest.from_file(str(APP), default_timeout=300).run()
    upload_parties(at, rows=60)
    columns = {c: {"sdtype": "categorical"} for c in at.dataframe[0].value["column"]}
    columns |= {"age": {"sdtype": "numerical"}, "fnlwgt": {"sdtype": "ssn"}}
    metadata = json.dumps({"tables": {"adult": {"columns": columns}}, "METADATA_SPEC_VERSION": "V2"}).encode()
    at.file_uploader(key="metadata").set_value(("adult.json", metadata, "application/json")).run()
    assert not at.exception
    assert any("Personal data, not modelled" in w.value and "fnlwgt" in w.value for w in at.warning)


def test_under_dp_federated_evaluation_is_refused_and_the_central_way_is_offered():
    at = AppTest.from_file(str(APP), default_timeout=300).run()
    upload_parties(at)
    at.checkbox(key="evaluate").check().run()
    small_run(at)
    at.checkbox(key="dp").check().run()
    assert "evaluate" not in [c.key for c in at.checkbox]  # the federated way is gone
    assert any("Federated evaluation is off under differential privacy" in i.value for i in at.info)
    at.checkbox(key="evaluate_central").check().run()
    at.selectbox(key="target").select("income")
    at.button(key="run").click().run()
    assert not at.exception, at.exception
    report = at.session_state["report"]
    assert report.mode == "central" and report.target == "income" and report.ledger is None
    assert at.session_state["state"].ledger  # the run itself was private
    assert b"Synthetic data evaluation" in at.session_state["files"]["report.html"]
    assert {"fidelity", "utility", "privacy"} <= set(at.table[0].value["area"])


VERTICAL = "Vertical: each party holds different columns about the same people"


def test_vertical_uploads_pick_a_key_show_each_party_run_and_report_within_parties():
    import pandas as pd

    from fedtab.demo import demo_parties, vertical_split

    people = pd.read_parquet(demo_parties()["clinic_north"]).head(240)
    tables = vertical_split(people, ["bank", "insurer", "registry"])
    at = AppTest.from_file(str(APP), default_timeout=300).run()
    at.radio(key="federation").set_value(VERTICAL).run()
    assert not at.exception, at.exception
    assert at.multiselect(key="key_columns").value == ["person_id"] and len(at.dataframe) == 3  # the demo, split by columns
    at.radio(key="source").set_value("Upload one table per party").run()
    at.file_uploader(key="uploads").set_value(
        [(f"{name}.csv", table.to_csv(index=False).encode(), "text/csv") for name, table in tables.items()]).run()
    assert not at.exception, at.exception
    assert at.multiselect(key="key_columns").value == ["person_id"]  # the one column every party holds
    shown = {tuple(frame.value["column"]) for frame in at.dataframe}
    assert shown == {tuple(c for c in table.columns if c != "person_id") for table in tables.values()}  # a grid per party
    at.checkbox(key="dp").check().run()
    assert "evaluate" not in [c.key for c in at.checkbox] and any("every party refuses" in i.value for i in at.info)
    at.checkbox(key="dp").uncheck().run()
    small_run(at)
    at.checkbox(key="evaluate").check().run()
    at.button(key="run").click().run()
    assert not at.exception, at.exception
    synthetic = at.session_state["synthetic"]
    assert set(synthetic.columns) == set(people.columns) and "person_id" not in synthetic.columns
    assert set(at.session_state["files"]) == {"synthetic.csv", "synthetic.parquet", "vertical_model.zip", "report.html"}
    assert list(at.table[0].value["party"]) == ["bank", "insurer", "registry"]
    assert any("Pairs across parties" in c.value and "not scored" in c.value for c in at.caption)
    assert any("people are in every party's table" in m.value for m in at.markdown)
