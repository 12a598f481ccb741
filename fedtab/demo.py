"""The demo federation shipped in the package: three parties cut from UCI Adult (CC BY 4.0)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from fedtab.config import FedtabConfig

DEMO_PARTIES = ("clinic_north", "clinic_south", "clinic_west")
DEMO_KEY = "person_id"


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


def vertical_split(people: pd.DataFrame, names: list[str], *, key: str = DEMO_KEY, share: float = 0.9,
                   seed: int = 0) -> dict[str, pd.DataFrame]:
    """A vertical federation to try: the columns dealt out in turn to the parties, each with the key and its own
    random ``share`` of the people, rows shuffled."""
    import numpy as np

    from fedtab.errors import ConfigError

    if not 2 <= len(names) <= len(people.columns):
        raise ConfigError(f"A vertical split deals the demo's {len(people.columns)} columns to 2 to {len(people.columns)} "
                          f"parties; got {len(names)}. Name between 2 and {len(people.columns)} parties.")
    people = people.assign(**{key: [f"person-{i:06d}" for i in range(len(people))]})
    rng = np.random.default_rng(seed)
    columns = [c for c in people.columns if c != key]
    return {name: people.loc[rng.random(len(people)) < share, [key, *columns[index::len(names)]]]
            .sample(frac=1.0, random_state=int(rng.integers(2**31))).reset_index(drop=True)
            for index, name in enumerate(names)}
