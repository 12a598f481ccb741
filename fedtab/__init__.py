"""fedtab: federated, differentially private tabular synthetic data."""

from fedtab.config import FedtabConfig
from fedtab.errors import (
    ConfigError,
    FederationError,
    FedtabError,
    NotFittedError,
    PartyError,
    PrivacyBudgetError,
    SchemaError,
)

__all__ = [
    "ConfigError",
    "FederatedSynthesizer",
    "FederationError",
    "FedtabConfig",
    "FedtabError",
    "NotFittedError",
    "PartyError",
    "PrivacyBudgetError",
    "SchemaError",
    "VerticalSynthesizer",
]
__version__ = "0.1.0"


def __getattr__(name: str):  # noqa: ANN202 - lazy so `import fedtab` stays light
    if name == "FederatedSynthesizer":
        from fedtab.synthesizer import FederatedSynthesizer

        return FederatedSynthesizer
    if name == "VerticalSynthesizer":
        from fedtab.vertical_synthesizer import VerticalSynthesizer

        return VerticalSynthesizer
    raise AttributeError(name)
