"""Property: a party's CSV, read into the schema's dtypes and written back with the schema, is the same text.

This is the path every synthetic value takes on its way out (decoded into the schema's dtypes, then
spelled and written), so boolean words, missing markers, integers and date formats survive it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedtab.connectors import load_party
from fedtab.export import export_table
from fedtab.sampler import spell

TOKENS = [("Yes", "No"), ("Y", "N"), ("true", "false"), ("True", "False"), ("1", "0"), ("yes", "no")]
MARKERS = ["?", "NA", ""]
FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y %H:%M"]
WORDS = ["red", "green", "blue", "violet"]


@st.composite
def party_text(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.integers(10, 30))
    true, false = draw(st.sampled_from(TOKENS))
    marker = draw(st.sampled_from(MARKERS))
    fmt = draw(st.sampled_from(FORMATS))
    flags = draw(st.lists(st.booleans(), min_size=rows, max_size=rows))
    days = draw(st.lists(st.integers(0, 3000), min_size=rows, max_size=rows))
    frame = pd.DataFrame({
        "flag": [true if f else false for f in flags[:-2]] + [true, false],
        "colour": draw(st.lists(st.sampled_from(WORDS), min_size=rows, max_size=rows)),
        "amount": draw(st.lists(st.integers(1_000, 10**7), min_size=rows, max_size=rows)),
        "day": (pd.Timestamp("2015-01-01") + pd.to_timedelta(days, unit="D")).strftime(fmt),
    }).astype(str)
    for column in frame.columns:
        holes = draw(st.lists(st.booleans(), min_size=rows, max_size=rows))
        frame.loc[[h and i >= 2 and i < rows - 2 for i, h in enumerate(holes)], column] = marker
    return frame


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(party_text())
def test_read_then_spell_then_write_gives_the_same_text(tmp_path: Path, written: pd.DataFrame) -> None:
    source, back = tmp_path / "party.csv", tmp_path / "back.csv"
    written.to_csv(source, index=False)
    party = load_party("a", source)
    export_table(spell(party.frame, party.schema), back, schema=party.schema)
    read_back = pd.read_csv(back, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(read_back, pd.read_csv(source, dtype=str, keep_default_na=False))


def test_without_the_spelling_the_same_table_comes_back_spelled_otherwise(tmp_path: Path) -> None:
    """Positive control: the property above fails when the schema's spelling is not applied."""
    source, back = tmp_path / "party.csv", tmp_path / "back.csv"
    pd.DataFrame({"flag": ["Yes", "No", "Yes"] * 4, "amount": ["1200", "?", "1500"] * 4}).to_csv(source, index=False)
    party = load_party("a", source)
    export_table(party.frame, back)
    plain = pd.read_csv(back, dtype=str, keep_default_na=False)
    assert set(plain["flag"]) == {"true", "false"} and set(plain["amount"]) == {"1200", "", "1500"}
