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


FAULT_CONFIG = """
[run]
rounds = 3
local-epochs = 0.5
batch-size = 100
seed = 0
bgm-max-rounds = 2
epsilon = 3.0
round-timeout = 300.0
checkpoint = "{checkpoint}"
[model]
name = "ctgan"
[model.options]
embedding_dim = 16
generator_dims = [32]
discriminator_dims = [32]
"""


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rounds_done(checkpoint: Path) -> int:
    try:
        return int(ModelState.load(checkpoint).rounds_done or 0)
    except Exception:  # noqa: BLE001 - not written yet
        return 0


@pytest.mark.skipif(shutil.which("flower-superlink", path=str(BIN)) is None, reason="Flower's CLI is not installed in this environment")
def test_run_finishes_when_a_supernode_is_killed_after_round_two(demo_frames, tmp_path):
    """kill -9 one of three SuperNodes after round 2: round 3 goes on with two, the ledger charges the third."""
    superlink = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "FLWR_HOME": str(tmp_path / "flwr"),
           "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
    (tmp_path / "flwr").mkdir()
    (tmp_path / "flwr" / "config.toml").write_text(f'[superlink.loopback]\naddress = "{superlink}"\ninsecure = true\n')
    checkpoint, model_out = tmp_path / "run.ckpt", tmp_path / "model.fedtab"
    (tmp_path / "fedtab.toml").write_text(FAULT_CONFIG.format(checkpoint=checkpoint))
    processes = [start([str(BIN / "flower-superlink"), "--insecure", "--disable-runtime-dependency-installation",
                        "--host", "127.0.0.1", "--port", superlink.rsplit(":", 1)[1]], tmp_path / "superlink.log", env)]
    nodes = {}
    try:
        time.sleep(4)
        for name in ("clinic_north", "clinic_south", "clinic_west"):
            path = tmp_path / f"{name}.parquet"
            demo_frames[name].iloc[:300].to_parquet(path, index=False)
            nodes[name] = start([str(BIN / "flower-supernode"), "--insecure", "--superlink", superlink, "--port", str(free_port()),
                                 "--node-config", f"data-path='{path}' party='{name}'"], tmp_path / f"{name}.log", env)
            processes.append(nodes[name])
        run_config = f"config-path='{tmp_path / 'fedtab.toml'}' num-parties=3 model-out='{model_out}'"
        run = subprocess.Popen([str(BIN / "flwr"), "run", str(ROOT), "loopback", "--run-config", run_config, "--stream"],
                               env=env, stdout=(tmp_path / "run.log").open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 400
        while rounds_done(checkpoint) < 2 and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.2)
        os.killpg(nodes["clinic_west"].pid, signal.SIGKILL)  # by its PID, mid-run
        run.wait(timeout=300)
        while not model_out.exists() and time.monotonic() < deadline:
            time.sleep(1)
        logs = "\n".join(p.read_text()[-2000:] for p in tmp_path.glob("*.log"))
        assert model_out.exists(), logs
    finally:
        for process in reversed(processes):
            stop(process)
    state = ModelState.load(model_out)
    assert run.returncode == 0, logs
    assert [r["parties"] for r in state.history] == [3.0, 3.0, 2.0]
    assert any("Round 3" in w and "clinic_west" in w for w in state.warnings), state.warnings
    assert state.ledger["missing"] == {"clinic_west": [3]}
    steps = {p["party"]: {m["mechanism"]: m["steps"] for m in p["mechanisms"]} for p in state.ledger["parties"]}
    assert steps["clinic_west"]["training"] == steps["clinic_north"]["training"]  # charged for round 3 all the same
