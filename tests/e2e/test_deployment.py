"""The README's deployment commands, run as written on loopback: TLS, SuperNode authentication, 3 parties by name.

The commands are read from README.md's *Deployment engine* section; only ports (chosen free now),
sizes and the model shrink, and a checkpoint is added, each by a named substitution that must apply.
That one run also serves the fault check: bank-c's SuperNode is killed (-9, by its PID) once round 2
is checkpointed, round 3 goes on with two parties and the ledger charges bank-c; the node then
restarts with its registered key. The same SuperLink then serves the bad inputs: nodes Flower
refuses (no TLS, no key, an unregistered key) and nodes fedtab refuses (a party the run does not
expect, two nodes claiming one party).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.metadata import distribution
from pathlib import Path

import pytest

from fedtab.model_state import ModelState
from fedtab.sampler import sample_table

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]
ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PARTIES = ("bank-a", "bank-b", "bank-c")
SMALLER = {
    "--rows 1500": "--rows 300",
    "rounds = 5": "rounds = 3",
    "local-epochs = 1\n": "local-epochs = 0.5\nbatch-size = 100\nbgm-max-rounds = 2\n",
    "seed = 0\n": "seed = 0\nround-timeout = 300.0\ncheckpoint = \"$PWD/run.ckpt\"\n[model.options]\nhidden_dims = [32]\n",
}
KILLED, KILL_AFTER = "bank-c", 2
"""The party whose SuperNode is killed once this many rounds are checkpointed."""
READY_S = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def deployment_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("## Deployment engine\n"):text.index("\n## ", text.index("## Deployment engine\n") + 5)]


def substituted(text: str, substitutions: dict[str, str]) -> str:
    for old, new in substitutions.items():
        assert old in text, f"the README's deployment section no longer has {old!r}; update the test's substitutions"
        text = text.replace(old, new)
    return text


def readme_commands(ports: dict[str, str]) -> tuple[list[str], str]:
    """The section's shell lines and its deploy.toml, with free ports and small sizes."""
    section = substituted(deployment_section(), {**SMALLER, **ports})
    (shell,) = re.findall(r"```shell\n(.*?)```", section, flags=re.S)
    (toml,) = re.findall(r"```toml\n(.*?)```", section, flags=re.S)
    return [line.strip() for line in shell.splitlines() if line.strip()], toml


def rounds_done(checkpoint: Path) -> int:
    try:
        return int(ModelState.load(checkpoint).rounds_done or 0)
    except Exception:  # noqa: BLE001 - not written yet, or being written
        return 0


def interpreter_bin(folder: Path) -> Path:
    """Flower's and fedtab's console scripts bound to this interpreter (SuperNodes start flwr-clientapp by name)."""
    folder.mkdir()
    scripts = [e for e in distribution("flwr").entry_points if e.group == "console_scripts"]
    scripts += [e for e in distribution("fedtab").entry_points if e.group == "console_scripts"]
    for entry in scripts:
        module, attr = entry.value.split(":")
        path = folder / entry.name
        path.write_text(f"#!{sys.executable}\nimport sys\nfrom {module} import {attr}\nsys.exit({attr}())\n")
        path.chmod(0o755)
    return folder


def wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited with {process.returncode} before listening:\n{log.read_text()[-3000:]}"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port} after {READY_S:.0f} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Stack:
    """The README's processes and environment, so later tests reuse its SuperLink."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.superlink = f"127.0.0.1:{free_port()}"
        self.env = {**os.environ, "PATH": f"{interpreter_bin(folder / 'bin')}{os.pathsep}{os.environ['PATH']}",
                    "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1", "FEDTAB_DEBUG": ""}
        self.processes: list[subprocess.Popen] = []
        self.outputs: list[subprocess.CompletedProcess] = []

    def start(self, line: str, log_name: str, *, ready: bool = True) -> subprocess.Popen:
        log = self.folder / f"{log_name}.log"
        args = shlex.split(line.rstrip("&").replace("$PWD", str(self.folder)))
        process = subprocess.Popen(args, cwd=self.folder, env=self.env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes.append(process)
        if ready and "--port" in args:
            wait_for_port(int(args[args.index("--port") + 1]), process, log)
        return process

    def call(self, line: str, timeout: float = 1200) -> subprocess.CompletedProcess:
        args = shlex.split(line.replace("$PWD", str(self.folder)))
        done = subprocess.run(args, cwd=self.folder, env=self.env, capture_output=True, text=True, timeout=timeout)
        self.outputs.append(done)
        return done

    def run_readme(self) -> None:
        """Every line as written; the last (`fedtab deploy run`) runs while ``KILLED``'s SuperNode is killed."""
        ports = {"127.0.0.1:9093": self.superlink, "--port 9093": f"--port {self.superlink.rsplit(':', 1)[1]}",
                 **{f"--port {9101 + i}": f"--port {free_port()}" for i in range(len(PARTIES))}}
        lines, toml = readme_commands(ports)
        (self.folder / "deploy.toml").write_text(toml.replace("$PWD", str(self.folder)))
        *setup, deploy_run = lines
        assert deploy_run.startswith("fedtab deploy run "), deploy_run
        self.run_lines(setup)
        self.outputs.append(self.run_killing(deploy_run))

    def run_killing(self, line: str) -> subprocess.CompletedProcess:
        """The deploy run, with ``KILLED``'s SuperNode killed by its PID once ``KILL_AFTER`` rounds are checkpointed."""
        (node,) = [p for p in self.processes if f"creds/{KILLED}.key" in p.args and p.poll() is None]
        args = shlex.split(line.replace("$PWD", str(self.folder)))
        out, err = self.folder / "deploy-run.out", self.folder / "deploy-run.err"
        run = subprocess.Popen(args, cwd=self.folder, env=self.env, stdout=out.open("w"), stderr=err.open("w"),
                               start_new_session=True)
        self.processes.append(run)
        deadline = time.monotonic() + 900
        while rounds_done(self.folder / "run.ckpt") < KILL_AFTER and run.poll() is None:
            assert time.monotonic() < deadline, self.logs()
            time.sleep(0.1)
        assert run.poll() is None, f"the run ended before round {KILL_AFTER} was checkpointed:\n{out.read_text()[-3000:]}"
        os.killpg(node.pid, signal.SIGKILL)
        code = run.wait(timeout=900)
        self.start(shlex.join(node.args), f"{KILLED}-restarted")
        return subprocess.CompletedProcess(args, code, out.read_text(), err.read_text())

    def run_lines(self, lines: list[str]) -> None:
        """Run README shell lines as written: exports into the stack's environment, `&` lines in the background."""
        for index, line in enumerate(lines):
            assert "$" not in line.replace("$PWD", ""), f"the test expands only $PWD: {line}"
            if line.startswith("export "):
                key, value = line.removeprefix("export ").split("=", 1)
                self.env[key] = value.replace("$PWD", str(self.folder))
            elif line.endswith("&"):
                self.start(line, f"background-{index}")
            else:
                done = self.call(line)
                assert done.returncode == 0, f"{line}\nexit {done.returncode}:\n{done.stdout[-4000:]}{done.stderr[-4000:]}{self.logs()}"

    def logs(self) -> str:
        return "".join(f"\n--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(self.folder.glob("*.log")))

    def close(self) -> None:
        for process in reversed(self.processes):  # SuperNodes first, then the SuperLink
            stop(process)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    deployment = Stack(tmp_path_factory.mktemp("deployment"))
    try:
        started = time.monotonic()
        deployment.run_readme()
        last = (deployment.outputs[-1].stdout.splitlines() or ["no output"])[-1]
        print(f"\nREADME deployment with {KILLED} killed: {time.monotonic() - started:.1f} s wall; {last}; "
              f"load {os.getloadavg()[0]:.1f}")
        yield deployment
    finally:
        deployment.close()


def test_the_readme_deployment_trains_a_model_through_a_killed_supernode(stack: Stack) -> None:
    """Round 3 goes on with two parties; bank-c is charged for it all the same (its reply never came)."""
    done = stack.outputs[-1]
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-4000:] + stack.logs()
    assert "fedtab: parties bank-a (300 rows), bank-b (300 rows), bank-c (300 rows)" in out, out[-4000:]
    assert "fedtab: encoder statistics round 1" in out and "fedtab: training round 1/3" in out, out[-4000:]
    assert "fedtab: training round 3/3" in out and f"fedtab: model written to {stack.folder / 'model.fedtab'}" in out, out[-4000:]
    state = ModelState.load(stack.folder / "model.fedtab")
    assert state.parties == {name: 300 for name in PARTIES}
    assert len(sample_table(state, 20, seed=0)) == 20
    assert [r["parties"] for r in state.history] == [3.0, 3.0, 2.0]
    assert any("Round 3" in w and KILLED in w for w in state.warnings), state.warnings
    assert state.ledger["missing"] == {KILLED: [3]}
    steps = {p["party"]: {m["mechanism"]: m["steps"] for m in p["mechanisms"]} for p in state.ledger["parties"]}
    assert steps[KILLED]["training"] == steps["bank-a"]["training"]  # charged for round 3 all the same
    answered = [{p for p in PARTIES if r.get(f"bytes_received.{p}", 0) > 0} for r in state.history]
    assert answered == [set(PARTIES), set(PARTIES), set(PARTIES) - {KILLED}], state.history
    assert all(r[f"bytes_sent.{p}"] > 0 for r in state.history for p in PARTIES), state.history
    assert state.history[2][f"failed.{KILLED}"] == 1.0, state.history
    listed = stack.call("flwr ls fedtab --format json")
    runs = json.loads(listed.stdout)["runs"]
    assert runs[-1]["status"] == "finished:completed" and runs[-1]["network-traffic"]["total-bytes"] > 0


def test_flower_refuses_nodes_without_tls_or_a_registered_key(stack: Stack) -> None:
    assert stack.call("fedtab deploy init rogue --parties mallory").returncode == 0
    base = (f"flower-supernode --superlink {stack.superlink} --node-config \"party='bank-a' data-path='$PWD/tables/bank-a.parquet'\" "
            "--max-retries 0 --port {port}")
    tls = " --root-certificates creds/ca.crt"
    cases = {
        "no TLS": (base + " --insecure", "Server disconnected without sending a response"),
        "no key": (base + tls, "SuperNode authentication is enabled. All SuperNodes must be registered"),
        "unregistered key": (base + tls + " --auth-supernode-private-key rogue/mallory.key", "Failed to activate SuperNode"),
    }
    started = {case: stack.start(line.format(port=free_port()), f"refused-{i}", ready=False)
               for i, (case, (line, _)) in enumerate(cases.items())}
    for i, (case, (_, words)) in enumerate(cases.items()):
        code = started[case].wait(timeout=READY_S)
        log = (stack.folder / f"refused-{i}.log").read_text()
        assert code != 0 and "Exit Code: 305" in log and words in log, f"{case}: exit {code}\n{log[-3000:]}"


def test_fedtab_refuses_unknown_and_duplicate_parties(stack: Stack) -> None:
    """bank-c is not in this run's parties; a second registered node claims bank-a. Both named, run failed."""
    assert stack.call("fedtab deploy init impostor --parties bank-a").returncode == 0
    assert stack.call("flwr supernode register impostor/bank-a.pub fedtab").returncode == 0
    stack.start(f"flower-supernode --superlink {stack.superlink} --root-certificates creds/ca.crt "
                f"--auth-supernode-private-key impostor/bank-a.key --port {free_port()} "
                "--node-config \"party='bank-a' data-path='$PWD/tables/bank-b.parquet'\"", "impostor")
    deadline = time.monotonic() + READY_S
    while sum(n["status"] == "online" for n in json.loads(stack.call("flwr supernode ls fedtab --format json").stdout)["nodes"]) < 4:
        assert time.monotonic() < deadline, stack.logs()
        time.sleep(1)
    done = stack.call(f"fedtab deploy run fedtab --run-config \"parties='bank-a,bank-b' config-path='{stack.folder / 'deploy.toml'}' "
                      f"model-out='{stack.folder / 'refused.fedtab'}'\"")
    assert done.returncode != 0, done.stdout[-3000:]
    assert "a SuperNode claims party 'bank-c', which this run does not expect" in done.stderr, done.stdout[-3000:] + done.stderr
    assert "two SuperNodes claim party 'bank-a'" in done.stderr, done.stderr
    assert not (stack.folder / "refused.fedtab").exists()
