"""--party-epsilon/--party-delta/--party-clip reach the config over a fedtab.toml, and the help states the limits."""

from __future__ import annotations

from fedtab.config import FedtabConfig
from fedtab.errors import ConfigError


def test_toml_round_trip(tmp_path):
    path = tmp_path / "fedtab.toml"
    path.write_text("[privacy]\nepsilon = 3.0\nparty-epsilon = 8.0\nparty-delta = 1e-6\nparty-clip = 0.25\n")
    config = FedtabConfig.from_toml(path)
    assert (config.epsilon, config.party_epsilon, config.party_delta, config.party_clip) == (3.0, 8.0, 1e-6, 0.25)
    assert FedtabConfig.from_dict(config.to_dict()) == config


def test_flags_override_the_file(cli, monkeypatch, tmp_path):
    path = tmp_path / "fedtab.toml"
    path.write_text("[privacy]\nparty-epsilon = 8.0\nparty-clip = 0.25\n")
    seen: dict[str, FedtabConfig] = {}

    class Stop:
        def __init__(self, config: FedtabConfig, **_: object) -> None:
            seen["config"] = config
            raise ConfigError("stopped before running")

    monkeypatch.setattr("fedtab.synthesizer.FederatedSynthesizer", Stop)
    code, out = cli("synthesize", "--demo", "--config", str(path),
                       "--party-epsilon", "4", "--party-delta", "1e-7")
    assert code == 2 and "stopped before running" in out
    config = seen["config"]
    assert (config.party_epsilon, config.party_delta, config.party_clip) == (4.0, 1e-7, 0.25)


def test_similarity_aggregation_with_party_dp_exits_with_the_fix(cli, tmp_path):
    path = tmp_path / "fedtab.toml"
    path.write_text('[run]\naggregation = "similarity"\n')
    code, out = cli("synthesize", "--demo", "--config", str(path), "--party-epsilon", "4")
    assert code == 2
    assert "needs aggregation 'fedavg'" in out and "Set aggregation = 'fedavg'" in out


def test_help_states_the_limits(cli):
    code, output = cli("synthesize", "--help")
    assert code == 0
    text = " ".join(output.replace("│", " ").split())  # rich wraps the help inside a box
    for limit in ("FedAvg only", "equal party weights instead of row-count weights", "no subsampling amplification",
                  "covers the model updates only", "protected per record by --epsilon, not per party",
                  "with few parties the noise on the mean update is large"):
        assert limit in text, limit
