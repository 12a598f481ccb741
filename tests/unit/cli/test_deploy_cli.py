"""`fedtab deploy init` writes credentials Flower accepts; bad names and reuse are refused in one line."""

from __future__ import annotations

import ipaddress
import tomllib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_ssh_private_key, load_ssh_public_key

from fedtab.errors import ConfigError
from fedtab.federation.apps import expected_parties


def test_init_writes_a_ca_a_server_certificate_and_p384_party_keys(cli, tmp_path) -> None:
    code, out = cli("deploy", "init", str(tmp_path / "creds"), "--parties", "bank-a,bank-b", "--superlink", "10.0.0.5:9093",
                    "--host", "link.example.org")
    assert code == 0, out
    creds = tmp_path / "creds"
    ca = x509.load_pem_x509_certificate((creds / "ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate((creds / "server.crt").read_bytes())
    server.verify_directly_issued_by(ca)  # raises if the CA did not sign it
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("10.0.0.5") in names.get_values_for_type(x509.IPAddress)
    assert {"localhost", "link.example.org"} <= set(names.get_values_for_type(x509.DNSName))
    key = load_pem_private_key((creds / "server.key").read_bytes(), password=None)
    assert key.public_key().public_numbers() == server.public_key().public_numbers()
    for party in ("bank-a", "bank-b"):
        private = load_ssh_private_key((creds / f"{party}.key").read_bytes(), password=None)
        public = load_ssh_public_key((creds / f"{party}.pub").read_bytes())
        assert isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp384r1"
        assert private.public_key().public_numbers() == public.public_numbers()
        assert (creds / f"{party}.key").stat().st_mode & 0o077 == 0
    connection = tomllib.loads((creds / "config.toml").read_text())["superlink"]["fedtab"]
    assert connection == {"address": "10.0.0.5:9093", "root-certificates": str((creds / "ca.crt").resolve())}


def test_init_refuses_to_overwrite_and_bad_names(cli, tmp_path) -> None:
    assert cli("deploy", "init", str(tmp_path), "--parties", "a")[0] == 0
    code, out = cli("deploy", "init", str(tmp_path), "--parties", "a")
    assert code == ConfigError.exit_code and "already holds credentials" in out
    code, out = cli("deploy", "init", str(tmp_path / "x"), "--parties", "a,../b")
    assert code == ConfigError.exit_code and "'a,../b'" in out
    code, out = cli("deploy", "init", str(tmp_path / "y"), "--parties", "a,a")
    assert code == ConfigError.exit_code and "names a party twice" in out


def test_the_run_config_names_parties_or_counts_them() -> None:
    assert expected_parties({"parties": "bank-a, bank-b", "num-parties": 5}) == ["bank-a", "bank-b"]
    assert expected_parties({"parties": "", "num-parties": 3}) == 3
    with pytest.raises(ConfigError, match="names a party twice"):
        expected_parties({"parties": "bank-a,bank-a"})
