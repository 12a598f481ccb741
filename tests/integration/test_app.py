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

