"""`fedtab deploy`: what a user needs around Flower's deployment engine, with TLS and node authentication on.

``init`` writes a test certificate authority, the SuperLink's certificate, one SuperNode key pair per
party (ECDSA P-384 in OpenSSH format, what ``flwr supernode register`` and
``--auth-supernode-private-key`` read) and a Flower CLI connection that trusts that CA. ``demo-data``
splits the shipped demo federation into one table per party, to try it out (``--vertical``: by columns,
with a key). ``run --vertical --key K`` runs the vertical protocol on the same apps. ``run`` wraps
``flwr run --stream`` so that a failed run exits non-zero with the server's last error (``flwr run``
returns 0 after the ServerApp failed).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from fedtab.errors import ConfigError, FederationError

deploy = typer.Typer(help="Run fedtab across sites on Flower's deployment engine (TLS and node authentication on).",
                     no_args_is_help=True)
PARTY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
VALID_DAYS = 365
LOG_PREFIX = "fedtab: "  # the ServerApp's progress and error lines (fedtab.federation.apps)


def party_names(text: str) -> list[str]:
    """``"bank-a,bank-b"`` → names, each checked once here so that file names and messages stay clean."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    bad = [name for name in names if not PARTY_NAME.match(name)]
    if not names or bad:
        raise ConfigError(f"--parties must be comma-separated names of letters, digits, '-', '_' or '.'; got {text!r}. "
                          "Give e.g. --parties bank-a,bank-b,bank-c.")
    if len(set(names)) != len(names):
        raise ConfigError(f"--parties names a party twice ({text!r}); give every party a unique name.")
    return names


def _ec_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP384R1())


def _certificate(subject: str, key, issuer_name: str, issuer_key, *, ca: bool, hosts: list[str]):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if hosts:
        names = [_san(host) for host in hosts]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA384())


def _san(host: str):
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def write_credentials(folder: Path, parties: list[str], hosts: list[str], superlink: str) -> list[Path]:
    """The CA, server certificate, party key pairs and CLI connection; refuses to overwrite a previous set."""
    from cryptography.hazmat.primitives import serialization as ser

    if (folder / "ca.crt").exists():
        raise ConfigError(f"{folder} already holds credentials (ca.crt); choose an empty folder or remove it first.")
    folder.mkdir(parents=True, exist_ok=True)
    pem, none = ser.Encoding.PEM, ser.NoEncryption()
    ca_key, server_key = _ec_key(), _ec_key()
    ca = _certificate("fedtab test CA", ca_key, "fedtab test CA", ca_key, ca=True, hosts=[])
    server = _certificate(hosts[0], server_key, "fedtab test CA", ca_key, ca=False, hosts=hosts)
    _write(folder / "ca.crt", ca.public_bytes(pem))
    _write(folder / "ca.key", ca_key.private_bytes(pem, ser.PrivateFormat.PKCS8, none), private=True)
    _write(folder / "server.crt", server.public_bytes(pem))
    _write(folder / "server.key", server_key.private_bytes(pem, ser.PrivateFormat.PKCS8, none), private=True)
    written = [folder / n for n in ("ca.crt", "ca.key", "server.crt", "server.key")]
    for party in parties:
        key = _ec_key()
        _write(folder / f"{party}.key", key.private_bytes(pem, ser.PrivateFormat.OpenSSH, none), private=True)
        _write(folder / f"{party}.pub", key.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH) + b"\n")
        written += [folder / f"{party}.key", folder / f"{party}.pub"]
    connection = f'[superlink]\ndefault = "fedtab"\n\n[superlink.fedtab]\naddress = "{superlink}"\n' \
                 f'root-certificates = "{(folder / "ca.crt").resolve()}"\n'
    _write(folder / "config.toml", connection.encode())
    return [*written, folder / "config.toml"]


@deploy.command("init")
def init_command(
    folder: Annotated[Path, typer.Argument(help="Empty folder for the certificates, keys and Flower connection.")],
    parties: Annotated[str, typer.Option(help="Comma-separated party names, one SuperNode key pair each.")],
    superlink: Annotated[str, typer.Option(help="host:port the SuperNodes and `flwr` reach the SuperLink at.")] = "127.0.0.1:9093",
    host: Annotated[list[str], typer.Option(help="Extra name or IP the SuperLink's certificate is valid for (repeatable).")] = [],  # noqa: B006 - typer reads the default
) -> None:
    """Write a test CA, the SuperLink's TLS certificate, SuperNode auth keys and a `flwr` connection (FLWR_HOME=FOLDER)."""
    address_host = superlink.rsplit(":", 1)[0].strip("[]")
    hosts = list(dict.fromkeys([address_host, "127.0.0.1", "localhost", *host]))
    for path in write_credentials(folder, party_names(parties), hosts, superlink):
        typer.echo(path)


@deploy.command("demo-data")
def demo_data_command(
    folder: Annotated[Path, typer.Argument(help="Folder for one Parquet table per party.")],
    parties: Annotated[str, typer.Option(help="Comma-separated party names, one table each.")],
    rows: Annotated[int, typer.Option(min=1, help="Rows per party (at most the demo's 4,500 split evenly).")] = 1500,
    vertical: Annotated[bool, typer.Option("--vertical", help="Split by columns instead: the same ROWS people, each party "
                                           "holding some of their columns, a person_id key and its own random 90 %.")] = False,
) -> None:
    """Split the shipped demo federation (UCI Adult) into one table per party, to try a deployment."""
    import pandas as pd

    from fedtab.demo import demo_parties, vertical_split

    names = party_names(parties)
    pooled = pd.concat([pd.read_parquet(path) for path in demo_parties().values()], ignore_index=True)
    folder.mkdir(parents=True, exist_ok=True)
    shares = vertical_split(pooled.head(rows), names) if vertical else {
        name: pooled.iloc[index::len(names)].head(rows) for index, name in enumerate(names)}
    for name, share in shares.items():
        share.to_parquet(folder / f"{name}.parquet", index=False)
        typer.echo(f"{folder / f'{name}.parquet'} ({len(share)} rows: {', '.join(share.columns)})")


def default_app() -> Path:
    """The Flower App is the fedtab repository (its pyproject.toml names the components)."""
    import fedtab

    root = Path(fedtab.__file__).resolve().parents[1]
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file() or "[tool.flwr.app]" not in pyproject.read_text(encoding="utf-8"):
        raise ConfigError(f"No Flower App beside the installed fedtab ({root} has no pyproject.toml with [tool.flwr.app]); "
                          "install fedtab from a clone (pip install -e .) or pass --app PATH_TO_THE_CLONE.")
    return root


@deploy.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run_command(
    ctx: typer.Context,
    connection: Annotated[str, typer.Argument(help="The SuperLink connection named in $FLWR_HOME/config.toml.")] = "fedtab",
    app: Annotated[Path | None, typer.Option(help="The Flower App; default: the repository fedtab is installed from.")] = None,
    vertical: Annotated[bool, typer.Option("--vertical", help="A vertical run: the parties hold different columns about the "
                                           "same people, joined on --key by private set intersection.")] = False,
    key: Annotated[Optional[list[str]], typer.Option("--key", help="Vertical runs: a key column every party identifies people by; repeatable.")] = None,
    evaluate: Annotated[bool, typer.Option("--evaluate", help="Vertical runs: each party scores its own synthetic columns; the report is written beside the table.")] = False,
) -> None:
    """`flwr run APP CONNECTION --stream [ARGS]`; exits non-zero, with the server's error, if the run failed."""
    flwr = shutil.which("flwr") or str(Path(sys.executable).parent / "flwr")
    command = [flwr, "run", str(app or default_app()), connection, "--stream", *vertical_run_config(vertical, key, evaluate), *ctx.args]
    started = subprocess.Popen(command, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    for line in started.stdout or []:  # the user sees the stream as it comes
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line)
    log = "".join(lines)
    run_id = re.search(r"started run (\d+)", log)
    if started.wait() != 0 or run_id is None:
        raise FederationError(f"`flwr run` could not start the run (exit status {started.returncode}); see its output above.")
    raise_if_failed(flwr, connection, run_id.group(1), log)


def vertical_run_config(vertical: bool, key: list[str] | None, evaluate: bool) -> list[str]:
    """``--vertical --key K`` as the run config the ServerApp and every SuperNode read (``vertical=true key='K'``)."""
    if not vertical:
        if key or evaluate:
            raise ConfigError("--key and --evaluate belong to vertical runs; add --vertical (or drop them).")
        return []
    if not key or any(not PARTY_NAME.match(k) for k in key):
        raise ConfigError(f"--vertical needs --key naming the key column (letters, digits, '-', '_', '.'); got {key}. "
                          "Give e.g. --key person_id.")
    return ["--run-config", f"vertical=true key='{','.join(key)}'" + (" evaluate=true" if evaluate else "")]


def raise_if_failed(flwr: str, connection: str, run_id: str, log: str) -> None:
    """`flwr ls` says how the run ended; a failure repeats the server's fedtab error, which names the party."""
    listed = subprocess.run([flwr, "ls", connection, "--run-id", run_id, "--format", "json"], text=True, capture_output=True)
    try:
        run = (json.loads(listed.stdout).get("runs") or [{}])[0]
    except json.JSONDecodeError:
        run = {}
    status = str(run.get("status", "unknown"))
    if status == "finished:completed":
        traffic = run.get("network-traffic", {})
        typer.echo(f"{LOG_PREFIX}run {run_id} completed in {float(run.get('elapsed', 0)):.0f} s; "
                   f"{traffic.get('total-bytes', '?')} bytes on the wire")
        return
    errors = [line.split(f"{LOG_PREFIX}error: ", 1)[1].strip() for line in log.splitlines() if f"{LOG_PREFIX}error: " in line]
    reason = errors[-1] if errors else str(run.get("status-details") or f"see `flwr log {run_id} {connection}`")
    raise FederationError(f"Run {run_id} ended {status}: {reason}")


def register(app: typer.Typer) -> None:
    app.add_typer(deploy, name="deploy")
