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
    at.button(key="run").click().run()
    assert not at.exception
    synthetic = at.session_state["synthetic"]
    assert len(synthetic) == 123 and "income" in synthetic.columns
    assert any("123 rows" in m.value for m in at.markdown)



def test_a_private_run_with_the_code_book_shows_its_ledger():
    at = AppTest.from_file(str(APP), default_timeout=300).run()
    at.number_input(key="rounds").set_value(1)
    at.number_input(key="epochs").set_value(0.5)
    at.selectbox(key="engine").select("local")
    at.checkbox(key="dp").check().run()
    at.number_input(key="epsilon").set_value(2.0)
    at.checkbox(key="demo_domain").check()
    at.button(key="run").click().run()
    assert not at.exception
    state = at.session_state["state"]
    assert state.config.epsilon == 2.0 and state.config.public_domain["age"] == {"bounds": [17, 90], "integer": True}
    assert not state.plan.notes  # the code book names every category: nothing fell into __rare__
    shown = "\n".join(block.value for block in at.code)
    assert "Differential privacy: record-level" in shown and "clinic_north: ε = " in shown


def test_the_party_level_option_states_its_limits_where_it_is_offered():
    at = AppTest.from_file(str(APP), default_timeout=300).run()
    at.number_input(key="party_epsilon").set_value(0.5).run()
    assert not at.exception
    assert any("Limits: FedAvg only" in c.value for c in at.caption)
