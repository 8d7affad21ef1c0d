"""The integrity digest a reference keeps of its object, and what it tells a reader of the row.

Every reference carries a digest of the object's bytes; a read recomputes it and refuses an object
that does not match. The digest is written in one of two forms:

- ``sha256:<hex>``: the SHA-256 of the bytes as stored. Used when the store holds those bytes as
  they are (no encryption, or encryption with keys the cloud manages: anyone allowed to read the
  object reads these bytes). Someone who can read the metadata database, and not the bucket, can
  check a guess of a value against it.
- ``hmac-sha256:<hex>``: an HMAC-SHA256 under a key derived from the store's customer key (the
  ``encryption_key`` extra of its connection, modes ``sse-c``, ``csek`` and ``cpk``). Without that
  key the digest says nothing about the value, so a reader of the metadata database (or of a
  backup) cannot confirm guesses. The workers already hold the key: they send it with every read.

Rows written before keyed digests keep an unkeyed ``sha256`` field; they read and verify as before.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from include.xcom_backends.errors import XComIntegrityError

SHA256 = "sha256"
HMAC_SHA256 = "hmac-sha256"
ALGORITHMS = (SHA256, HMAC_SHA256)
# The label of the key derived from a customer key, so the digest key is never the encryption key itself.
_KEY_LABEL = b"xcom-storage integrity digest v1"


def split(digest: str) -> tuple[str, str]:
    """(algorithm, hex) of a digest as a reference holds it."""
    algorithm, sep, hexdigest = digest.partition(":")
    if not sep or algorithm not in ALGORITHMS or not hexdigest:
        raise ValueError(f"unknown digest form {digest[:40]!r}: expected one of {', '.join(ALGORITHMS)}, then ':'")
    return algorithm, hexdigest


@dataclass(frozen=True)
class Digester:
    """Computes and checks the digests of one store's objects."""

    key: bytes | None = field(default=None, repr=False)  # the HMAC key; None: plain SHA-256

    @classmethod
    def for_customer_key(cls, customer_key: bytes | None) -> Digester:
        if customer_key is None:
            return cls(None)
        return cls(hmac.digest(customer_key, _KEY_LABEL, "sha256"))

    @property
    def algorithm(self) -> str:
        return SHA256 if self.key is None else HMAC_SHA256

    def digest(self, data: bytes | memoryview, algorithm: str | None = None) -> str:
        """The digest of ``data`` in this store's form, or in ``algorithm`` (to check an older row)."""
        algorithm = algorithm or self.algorithm
        if algorithm == SHA256:
            return f"{SHA256}:{hashlib.sha256(data).hexdigest()}"
        if self.key is None:
            raise XComIntegrityError(
                "This XCom object's integrity digest is keyed with a customer encryption key, and its store "
                "has none configured now: set the store's encryption mode and the 'encryption_key' extra of "
                "its connection back to what they were when the value was written, then read it again."
            )
        return f"{HMAC_SHA256}:{hmac.new(self.key, data, 'sha256').hexdigest()}"

    def matches(self, data: bytes | memoryview, digest: str) -> bool:
        """Whether ``data`` has ``digest`` (compared in constant time)."""
        algorithm, _ = split(digest)
        return hmac.compare_digest(self.digest(data, algorithm), digest)
