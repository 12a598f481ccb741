"""Declared public bounds and categories: checked in the config, applied to the reconciled schema."""

from __future__ import annotations

import json

import pytest

from fedtab import FedtabConfig
from fedtab.connectors.public_domain import declare_public, domain_problems, read_public_domain
from fedtab.demo import demo_public_domain_path
from fedtab.errors import ConfigError, SchemaError
from fedtab.schema import ColumnKind, ColumnSchema, TableSchema

SCHEMA = TableSchema((
    ColumnSchema("age", ColumnKind.NUMERICAL, "int64", is_integer=True),
    ColumnSchema("sex", ColumnKind.CATEGORICAL, "object"),
    ColumnSchema("smoker", ColumnKind.BOOLEAN, "bool"),
))


def test_declared_bounds_and_categories_land_on_the_schema():
    declared = declare_public(SCHEMA, {"age": {"bounds": [0, 120]}, "sex": {"categories": ["F", "M"]}})
    assert declared["age"].bounds == (0.0, 120.0)
    assert declared["sex"].categories == ("F", "M")
    assert declared["smoker"] == SCHEMA["smoker"]


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        ({"weight": {"bounds": [0, 1]}}, "column 'weight' is not in the parties' tables"),
        ({"sex": {"bounds": [0, 1]}}, "column 'sex' is categorical; bounds applies to numerical"),
        ({"age": {"categories": ["1"]}}, "column 'age' is numerical; categories apply to categorical"),
        ({"smoker": {"categories": ["yes"]}}, "column 'smoker' is boolean"),
    ],
)
def test_a_domain_that_does_not_fit_the_schema_names_the_column(domain, message):
    with pytest.raises(SchemaError, match=message):
        declare_public(SCHEMA, domain)


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        ({"age": {"bounds": [5, 1]}}, "finite low < high"),
        ({"age": {"bounds": [0, float("inf")]}}, "finite low < high"),
        ({"age": {"bounds": [0]}}, "finite low < high"),
        ({"sex": {"categories": []}}, "non-empty list of strings"),
        ({"sex": {"categories": ["F", 1]}}, "non-empty list of strings"),
        ({"sex": {"categories": ["F", "F"]}}, r"repeat \['F'\]"),
        ({"sex": {"levels": ["F"]}}, "expected a table with 'bounds' or 'categories'"),
        ({"sex": {"bounds": [0, 1], "categories": ["F"]}}, "not both"),
    ],
)
def test_malformed_domains_are_refused_by_the_config(domain, message):
    assert domain_problems(domain)
    with pytest.raises(ConfigError, match=message):
        FedtabConfig(public_domain=domain)


def test_toml_public_tables_become_the_config_domain():
    config = FedtabConfig.from_dict({"public": {"age": {"bounds": [0, 120]}}, "run": {"rounds": 3}})
    assert config.public_domain == {"age": {"bounds": [0, 120]}}
    assert FedtabConfig.from_dict(config.to_dict()) == config


def test_domain_files_read_as_json_or_toml(tmp_path):
    as_json = tmp_path / "domain.json"
    as_json.write_text(json.dumps({"sex": {"categories": ["F", "M"]}}))
    as_toml = tmp_path / "domain.toml"
    as_toml.write_text('[public.sex]\ncategories = ["F", "M"]\n')
    assert read_public_domain(as_json) == read_public_domain(as_toml) == {"sex": {"categories": ["F", "M"]}}


def test_broken_domain_files_say_what_to_fix(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_public_domain(tmp_path / "nope.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="not readable json"):
        read_public_domain(broken)
    latin = tmp_path / "latin.toml"
    latin.write_bytes("[public.caf\xe9]\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not readable toml"):
        read_public_domain(latin)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"age": {"bounds": [3, 2]}}))
    with pytest.raises(ConfigError, match="'age'.*low < high"):
        read_public_domain(wrong)


def test_the_shipped_adult_code_book_is_a_valid_domain():
    domain = read_public_domain(demo_public_domain_path())
    assert domain["age"] == {"bounds": [17, 90], "integer": True}
    assert len(domain["native-country"]["categories"]) == 41
    assert sum("categories" in entry for entry in domain.values()) == 9


def test_integer_declares_whole_numbers_on_a_numerical_column_only():
    schema = TableSchema((ColumnSchema("age", ColumnKind.NUMERICAL, "float64"), ColumnSchema("sex", ColumnKind.CATEGORICAL, "object")))
    declared = declare_public(schema, {"age": {"bounds": [17, 90], "integer": True}})
    assert declared["age"].is_integer and declared["age"].dtype == "Int64" and declared["age"].bounds == (17.0, 90.0)
    with pytest.raises(SchemaError, match="'sex' is categorical; integer applies to numerical"):
        declare_public(schema, {"sex": {"integer": True}})
    assert domain_problems({"age": {"integer": False}}) == ["public domain of column 'age': integer may only be true, on a numerical column; got False"]
