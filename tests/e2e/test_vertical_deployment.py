"""The README's vertical deployment commands, run as written on loopback: TLS, SuperNode authentication, 3 parties.

One run (a deployment run costs a minute or more here): PSI alignment, the latent round, sampling
through the parties and the per-party evaluation all travel through the same Flower apps as a
horizontal run. Only ports (chosen free now), sizes and the model shrink, each by a named
substitution that must apply. The helpers are the horizontal deployment test's.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pandas as pd
import pytest
from test_deployment import README, Stack, free_port, substituted

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
PARTIES = ("bank", "insurer", "registry")
KEY = "person_id"
SMALLER = {
    "--rows 1500": "--rows 240",
    "rounds = 30": "rounds = 1\nbatch-size = 100\nlatent-dim = 2\nlatent-hidden = 16\nbgm-components = 3\nbgm-max-rounds = 3",
    "seed = 0\n": "seed = 0\n[model.options]\nembedding_dim = 8\ncompress_dims = [16]\ndecompress_dims = [16]\n",
}


def vertical_section(ports: dict[str, str]) -> tuple[list[str], str]:
    text = README.read_text(encoding="utf-8")
    start = text.index("### Vertical runs on the deployment engine\n")
    section = substituted(text[start:text.index("\n## ", start)], {**SMALLER, **ports})
    (shell,) = re.findall(r"```shell\n(.*?)```", section, flags=re.S)
    (toml,) = re.findall(r"```toml\n(.*?)```", section, flags=re.S)
    return [line.strip() for line in shell.splitlines() if line.strip()], toml


def test_the_readme_vertical_deployment_writes_every_partys_columns_and_no_key(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    try:
        ports = {"127.0.0.1:9094": stack.superlink, "--port 9094": f"--port {stack.superlink.rsplit(':', 1)[1]}",
                 **{f"--port {9111 + i}": f"--port {free_port()}" for i in range(len(PARTIES))}}
        lines, toml = vertical_section(ports)
        (tmp_path / "vertical.toml").write_text(toml)
        started = time.monotonic()
        stack.run_lines(lines)
        out = stack.outputs[-1].stdout
        print(f"\nREADME vertical deployment: {time.monotonic() - started:.1f} s wall; {out.splitlines()[-1]}; "
              f"load {os.getloadavg()[0]:.1f}")
        listed = json.loads(stack.call("flwr ls fedtab --format json").stdout)["runs"]
        assert listed[-1]["status"] == "finished:completed" and listed[-1]["network-traffic"]["total-bytes"] > 0
    finally:
        stack.close()
    tables = {p: pd.read_parquet(tmp_path / "vtables" / f"{p}.parquet") for p in PARTIES}
    people = set.intersection(*[set(t[KEY]) for t in tables.values()])
    assert f"fedtab: parties {', '.join(f'{p} ({len(tables[p])} rows)' for p in PARTIES)}" in out, out[-4000:]
    assert f"fedtab: aligned {len(people)} people held by every party" in out and "latent round" in out, out[-4000:]
    synthetic = pd.read_csv(tmp_path / "synthetic.csv")
    assert len(synthetic) == len(people)
    assert set(synthetic.columns) == {c for t in tables.values() for c in t.columns if c != KEY}
    layout = json.loads((tmp_path / "vertical-model" / "vertical.json").read_text())
    assert layout["rows"] == len(people) and sorted(layout["parties"]) == sorted(PARTIES)
    assert sorted(p.name for p in (tmp_path / "vertical-model").iterdir()) == ["server.fedtab", "vertical.json"]
    for party in PARTIES:  # each decoder stays on its party's disk
        assert (tmp_path / "vstate" / party / f"decoder-{party}.npz").is_file()
    scores = json.loads((tmp_path / "synthetic.scores.json").read_text())
    assert [p["party"] for p in scores["parties"]] == sorted(PARTIES) and scores["cross_party_pairs"]["available"] is False
    outputs = [tmp_path / "synthetic.csv", tmp_path / "synthetic.scores.json", tmp_path / "synthetic.report.html",
               *(tmp_path / "vertical-model").iterdir()]
    keys = sorted(people)[:50]
    for path in outputs:  # no key value in any output
        text = path.read_bytes().decode("latin-1")
        assert not [k for k in keys if k in text], path
