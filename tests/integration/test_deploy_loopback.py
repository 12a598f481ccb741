"""`fedtab app` listens on this machine only unless the user asks: its listening sockets, read from /proc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads listening sockets from Linux's /proc")
READY_S = 120.0


def process_tree(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += children.get(pid, [])
    return tree


def listening(pids: set[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state that one of ``pids`` holds."""
    inodes = set()
    for pid in pids:
        try:
            inodes |= {os.readlink(fd)[8:-1] for fd in Path(f"/proc/{pid}/fd").iterdir() if os.readlink(fd).startswith("socket:[")}
        except OSError:
            continue
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                address, port = fields[1].split(":")
                found.add((_address(address, width), int(port, 16)))
    return found


def _address(hex_address: str, width: int) -> str:
    raw = bytes.fromhex(hex_address)
    if width == 8:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    return socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(("flags", "expected"), [((), "127.0.0.1"), (("--address", "0.0.0.0"), "0.0.0.0")])
def test_the_app_listens_on_loopback_unless_asked(flags: tuple[str, ...], expected: str) -> None:
    """The second case is the control: the same probe sees an app that serves every network."""
    pytest.importorskip("streamlit", reason="the app is the [app] extra")
    port = free_port()
    app = subprocess.Popen([sys.executable, "-m", "fedtab", "app", "--port", str(port), *flags],
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + READY_S
        while not any(p == port for _, p in listening(process_tree(app.pid))):
            assert app.poll() is None and time.monotonic() < deadline, f"the app did not listen on {port} (exit {app.poll()})"
            time.sleep(0.2)
        assert listening(process_tree(app.pid)) == {(expected, port)}
    finally:
        os.killpg(app.pid, signal.SIGTERM)
        app.wait(timeout=30)
