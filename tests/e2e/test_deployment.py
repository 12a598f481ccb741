"""The same apps on Flower's deployment engine: a SuperLink and one SuperNode per party on loopback."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedtab.connectors import load_party, reconcile
from fedtab.model_state import ModelState
from fedtab.sampler import sample_table

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SUPERLINK = "127.0.0.1:8000"
CONFIG = """
[run]
rounds = 1
local-epochs = 0.5
batch-size = 100
seed = 0
bgm-max-rounds = 2
[model]
name = "ctgan"
[model.options]
embedding_dim = 16
generator_dims = [32]
discriminator_dims = [32]
"""


def start(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.skipif(shutil.which("flower-superlink", path=str(BIN)) is None, reason="Flower's CLI is not installed in this environment")
def test_two_parties_on_superlink_and_supernodes(demo_frames, tmp_path):
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # SuperNodes start flower-superexec by name
        "FLWR_HOME": str(tmp_path / "flwr"),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
    }
    (tmp_path / "flwr").mkdir()
    (tmp_path / "flwr" / "config.toml").write_text(f'[superlink.loopback]\naddress = "{SUPERLINK}"\ninsecure = true\n')
    paths = {}
    for name in ("clinic_north", "clinic_south"):
        paths[name] = tmp_path / f"{name}.parquet"
        demo_frames[name].iloc[:300].to_parquet(paths[name], index=False)
    schema = reconcile([load_party(n, p) for n, p in paths.items()])
    (tmp_path / "fedtab.toml").write_text(CONFIG)
    model_out = tmp_path / "model.fedtab"

    processes = [start([str(BIN / "flower-superlink"), "--insecure", "--disable-runtime-dependency-installation"], tmp_path / "superlink.log", env)]
    try:
        time.sleep(4)
        for port, (name, path) in zip((19094, 19095), paths.items()):
            node_config = f"data-path='{path}' party='{name}'"
            processes.append(start([str(BIN / "flower-supernode"), "--insecure", "--superlink", SUPERLINK, "--port", str(port),
                                    "--node-config", node_config], tmp_path / f"{name}.log", env))
        run_config = f"config-path='{tmp_path / 'fedtab.toml'}' num-parties=2 model-out='{model_out}'"
        run = subprocess.run([str(BIN / "flwr"), "run", str(ROOT), "loopback", "--run-config", run_config, "--stream"],
                             env=env, capture_output=True, text=True, timeout=400)
        deadline = time.monotonic() + 120
        while not model_out.exists() and time.monotonic() < deadline:
            time.sleep(1)
        logs = "\n".join(p.read_text()[-2000:] for p in tmp_path.glob("*.log"))
        assert model_out.exists(), run.stdout[-3000:] + run.stderr[-3000:] + logs
    finally:
        for process in reversed(processes):
            stop(process)
    state = ModelState.load(model_out)
    assert state.parties == {"clinic_north": 300, "clinic_south": 300}
    assert list(sample_table(state, 20, seed=0).columns) == schema.names
