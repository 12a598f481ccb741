"""Crypto for vertical alignment: two-party ECDH PSI (``openmined.psi``), sealed secrets, keyed tags.

The protocol that strings these together is ``fedtab.federation.alignment``; every function here is
local to one party and returns bytes that may travel. What each output reveals:

- ``psi_request``: the client's keys blinded by its secret scalar (H(x)^c): nothing without c.
- ``psi_setup`` / ``psi_response``: the PSI server's keys blinded by its scalar in a compressed set, and
  the client's blinded keys raised to that scalar: only the client, holding c, can test membership.
- ``psi_intersection``: which of the client's own keys the server holds, on the client.
- ``seal`` / ``unseal``: bytes under X25519 + HKDF + ChaCha20-Poly1305 between two parties (the group
  secret, and every PSI message, so the relay can neither read nor inject one); it sees public keys
  and ciphertext.
- ``tags``: HMAC-SHA256 of each key under the parties' shared secret: opaque to whoever lacks it.

GCS (Golomb-compressed set) rather than a Bloom filter: openmined.psi's Bloom filter gave 11 false
positives in 1,500 small queries here (keys 5-120 a side; the requested rate was 1e-9 per query,
and OpenMined/PSI#151 warns results must be checked), the GCS none in 1,500; its setup is also
about 30 % smaller (0.60 MB against 0.84 MB for 100k keys). A false positive would put a key in
the intersection that a party lacks; the final tag match turns any into an error, never a misalignment.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

import numpy as np

FALSE_POSITIVE_RATE = 1e-9
"""Per PSI query (all of the client's keys together), as openmined.psi sizes its GCS."""
KEY_BYTES = 32
_NONCE = 12


def _psi():  # noqa: ANN202 - the binding has no type stubs
    import private_set_intersection.python as psi

    return psi


def psi_request(keys: Sequence[str]) -> tuple[bytes, bytes]:
    """The PSI client's blinded keys (to send) and its secret scalar (to keep until the response comes)."""
    psi = _psi()
    client = psi.client.CreateWithNewKey(True)
    return client.CreateRequest(list(keys)).SerializeToString(), client.GetPrivateKeyBytes()


def psi_setup(keys: Sequence[str], *, client_keys: int) -> tuple[bytes, bytes]:
    """The PSI server's compressed set of its blinded keys (to send) and its fresh secret scalar (to keep).

    A fresh scalar for every run, so replies in two runs cannot be linked.
    """
    psi = _psi()
    server = psi.server.CreateWithNewKey(True)
    setup = server.CreateSetupMessage(FALSE_POSITIVE_RATE, max(client_keys, 1), list(keys), psi.DataStructure.GCS)
    return setup.SerializeToString(), server.GetPrivateKeyBytes()


def psi_response(server_key: bytes, request: bytes) -> bytes:
    """The PSI server's answer to a client's request: the client's blinded keys raised to its scalar."""
    psi = _psi()
    parsed = psi.Request()
    parsed.ParseFromString(request)
    return psi.server.CreateFromKey(server_key, True).ProcessRequest(parsed).SerializeToString()


def psi_intersection(client_key: bytes, setup: bytes, response: bytes) -> np.ndarray:
    """Positions, in the client's request, of the keys the server holds (sorted)."""
    psi = _psi()
    client = psi.client.CreateFromKey(client_key, True)
    parsed_setup, parsed_response = psi.ServerSetup(), psi.Response()
    parsed_setup.ParseFromString(setup)
    parsed_response.ParseFromString(response)
    return np.sort(np.asarray(client.GetIntersection(parsed_setup, parsed_response), dtype=np.int64))


def dummy_keys(count: int) -> list[str]:
    """Random fillers that pad a key list to a public length; they start with '#', which no canonical
    key does, and 128 random bits make a match with another party's filler negligible."""
    return ["#" + secrets.token_hex(16) for _ in range(count)]


def secret_permutation(size: int) -> np.ndarray:
    """A shuffle from the OS's entropy, so the order of blinded keys says nothing about the rows."""
    return np.random.default_rng(secrets.randbits(128)).permutation(size)


def new_exchange_key() -> tuple[bytes, bytes]:
    """A fresh X25519 key pair (private, public), raw 32 bytes each."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    private = X25519PrivateKey.generate()
    return (private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
            private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def _channel_key(private: bytes, their_public: bytes, label: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    shared = X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(their_public))
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=f"fedtab.psi.seal|{label}".encode()).derive(shared)


def seal(message: bytes, *, private: bytes, their_public: bytes, label: str) -> bytes:
    """``message`` encrypted for the holder of ``their_public``; ``label`` (sender|receiver|what) is
    authenticated, so a relay can neither read it, forge one, nor pass one off as another."""
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    nonce = secrets.token_bytes(_NONCE)
    return nonce + ChaCha20Poly1305(_channel_key(private, their_public, label)).encrypt(nonce, message, label.encode())


def unseal(sealed: bytes, *, private: bytes, their_public: bytes, label: str) -> bytes:
    """The message ``seal`` encrypted; raises ``cryptography.exceptions.InvalidTag`` if it was altered."""
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    key = _channel_key(private, their_public, label)
    return ChaCha20Poly1305(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], label.encode())


def group_secret(table_digest: bytes, seed: int) -> bytes:
    """The parties' shared secret, made by the leader from its whole table and the run's seed.

    Deterministic (same table, same seed, same row order) yet unknown to a server, which would have
    to guess every cell of the leader's table; a different seed gives an unrelated secret.
    """
    return hmac.new(hashlib.sha256(table_digest).digest(), f"fedtab.psi.group|{seed}".encode(), hashlib.sha256).digest()


def derived_secret(secret: bytes, label: str) -> bytes:
    """A sub-secret for one use (tags, later protocol steps), so no two uses share a key."""
    return hmac.new(secret, f"fedtab.psi.derive|{label}".encode(), hashlib.sha256).digest()


def tags(secret: bytes, keys: Sequence[str]) -> np.ndarray:
    """HMAC-SHA256 of each canonical key, as a (len(keys), 32) uint8 array."""
    out = np.empty((len(keys), KEY_BYTES), dtype=np.uint8)
    for i, key in enumerate(keys):
        out[i] = np.frombuffer(hmac.new(secret, key.encode(), hashlib.sha256).digest(), dtype=np.uint8)
    return out


def to_array(blob: bytes) -> np.ndarray:
    """Bytes as the uint8 array a Payload carries."""
    return np.frombuffer(blob, dtype=np.uint8).copy()


def to_bytes(array: np.ndarray) -> bytes:
    return np.asarray(array, dtype=np.uint8).tobytes()
