"""The demo federation shipped in the package: three parties cut from UCI Adult (CC BY 4.0)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fedtab.config import FedtabConfig

DEMO_PARTIES = ("clinic_north", "clinic_south", "clinic_west")


def demo_parties() -> dict[str, Path]:
    folder = resources.files("fedtab") / "data" / "demo"
    return {name: Path(str(folder / f"{name}.parquet")) for name in DEMO_PARTIES}


def demo_public_domain_path() -> Path:
    """Adult's code book as a public domain file (bounds and categories known without the rows)."""
    return Path(str(resources.files("fedtab") / "data" / "demo" / "public_domain.toml"))


def demo_config() -> FedtabConfig:
    """The default model (argn), small enough to finish in well under a minute on two cores, large enough to learn
    the marginals. No target here: tvae takes none (``make demo`` declares ``--target income`` with argn)."""
    return FedtabConfig(rounds=6, local_epochs=2.0, batch_size=500, seed=0)
