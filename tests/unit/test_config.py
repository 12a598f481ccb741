import pytest

from fedtab.config import FedtabConfig
from fedtab.errors import ConfigError


def test_defaults_are_valid_and_frozen():
    config = FedtabConfig()
    with pytest.raises(AttributeError):
        config.rounds = 3  # type: ignore[misc]


def test_every_problem_is_listed_at_once():
    with pytest.raises(ConfigError) as info:
        FedtabConfig(rounds=0, batch_size=1, aggregation="mean")
    text = str(info.value)
    assert "'rounds' must be an int >= 1; got 0" in text
    assert "'batch_size'" in text and "'aggregation'" in text


def test_bool_is_not_an_int():
    with pytest.raises(ConfigError, match="'rounds'"):
        FedtabConfig(rounds=True)


def test_replace_ignores_unset_flags():
    config = FedtabConfig(rounds=7).replace(rounds=None, seed=4)
    assert config.rounds == 7 and config.seed == 4


def test_toml_sections_and_model_options(tmp_path):
    path = tmp_path / "fedtab.toml"
    path.write_text(
        '[run]\nrounds = 4\nlocal-epochs = 1.5\n[model]\nname = "ctgan"\n[model.options]\nembedding_dim = 64\n'
        "[privacy]\nepsilon = 3.0\n"
    )
    config = FedtabConfig.from_toml(path)
    assert (config.rounds, config.local_epochs, config.epsilon) == (4, 1.5, 3.0)
    assert config.model_options == {"embedding_dim": 64}
    assert FedtabConfig.from_dict(config.to_dict()) == config


def test_unknown_key_and_bad_file_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="Unknown configuration keys \\['roundz'\\]"):
        FedtabConfig.from_dict({"roundz": 3})
    with pytest.raises(ConfigError, match="does not exist"):
        FedtabConfig.from_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("rounds = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        FedtabConfig.from_toml(bad)


def test_checkpoint_is_a_path_from_toml_or_none(tmp_path):
    path = tmp_path / "fedtab.toml"
    path.write_text('[run]\nrounds = 4\ncheckpoint = "out/run.ckpt"\n')
    assert FedtabConfig.from_toml(path).checkpoint == "out/run.ckpt"
    assert FedtabConfig().checkpoint is None
    with pytest.raises(ConfigError, match="'checkpoint' must be None or a file path"):
        FedtabConfig(checkpoint="  ")
