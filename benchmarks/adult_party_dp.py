"""fedtab under party-level DP on Adult, 5 parties (Dirichlet 0.5 over income): SDMetrics quality per party ε.

Prints its figures only (no RESULTS.md): one line per budget, "none" being plain FedAvg by row count.

    python benchmarks/adult_party_dp.py [--party-epsilons none 10] [--rounds 30]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from adult_federated import DEFAULT_DATA, load_adult, quality, split  # noqa: E402


def run_one(party_epsilon: float | None, data: Path, rounds: int) -> dict:
    from fedtab import FederatedSynthesizer, FedtabConfig

    train = load_adult(data)
    config = FedtabConfig(model="ctgan", rounds=rounds, local_epochs=30 / rounds, seed=0, party_epsilon=party_epsilon)
    started = time.perf_counter()
    synthesizer = FederatedSynthesizer(config).fit(split(train, "dirichlet"))
    fit_s = time.perf_counter() - started
    party_level = (synthesizer.state_.ledger or {}).get("party_level")
    return {
        "party_epsilon": "none" if party_epsilon is None else party_epsilon,
        "spent": None if party_level is None else party_level["epsilon"],
        "noise_multiplier": None if party_level is None else party_level["noise_multiplier"],
        **quality(train, synthesizer.sample(len(train))),
        "fit_s": fit_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--party-epsilons", nargs="*", default=["none", "10"])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    for eps in args.party_epsilons:
        print("RESULT " + json.dumps(run_one(None if eps == "none" else float(eps), args.data, args.rounds)), flush=True)


if __name__ == "__main__":
    main()
