"""What a party lets leave, decided on the party: error replies without values, and no exact scores
after a run that promised differential privacy.

The full text of an error stays in the party's own log (python logging, logger ``fedtab.party``);
the reply names the party, the message and the kind of problem, with every fragment the
connectors marked private (cell values, row counts, names found in the party's database) withheld.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from fedtab.errors import ConfigError, FedtabError, FederationError
from fedtab.federation import keys
from fedtab.federation.payload import Payload

logger = logging.getLogger("fedtab.party")

EVALUATION_UNDER_DP = (
    "Party {party!r} refuses federated evaluation: it has released statistics or updates under differential "
    "privacy in this federation, and evaluation scores (exact marginals, contingency tables, distances from each "
    "synthetic row to its real rows) would leave it uncharged; a 'synthetic' table of the server's choosing would "
    "read off which rows it holds. Evaluate centrally instead (`fedtab evaluate` where one examiner holds the real "
    "and held-out rows), or check the synthetic table alone; or train without --epsilon to evaluate federatedly."
)


def error_reply(party: str, message_type: str, error: BaseException) -> Payload:
    """The reply a failed handler sends: redacted for the wire, the full text logged on the party."""
    if isinstance(error, FedtabError):
        logger.error("party %r, %s: %s", party, message_type, error)
        return Payload.from_error(error)
    logger.error("party %r crashed during %s", party, message_type, exc_info=error)
    return Payload.from_error(FederationError(
        f"Party '{party}' crashed with {type(error).__name__} during {message_type}; the crash's text may quote the "
        "party's rows, so it stays in that party's own log (logger 'fedtab.party'). Ask that party's operator for it."
    ), fault=True)


def refuse_evaluation_under_dp(party: str, state: Mapping[str, np.ndarray], *, require_dp: bool = False) -> None:
    """A party that requires DP, or has made DP releases in this federation, sends no exact score
    computed on its rows.

    Its own policy and state say so (its accountant, or its secret noise seed): a server cannot talk it
    out of that by leaving the privacy settings off the evaluation message.
    """
    if require_dp or keys.ACCOUNTANT_STATE in state or keys.NOISE_SEED in state:
        raise ConfigError(EVALUATION_UNDER_DP.format(party=party))
