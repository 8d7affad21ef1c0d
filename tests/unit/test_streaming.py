"""Bytes for clients that need them, and the hash that runs beside an upload or a decode."""

from __future__ import annotations

import hashlib

import pytest

from include.xcom_backends.backend import _OVERLAP_MIN, _with_digest
from include.xcom_backends.stores.base import as_bytes


def test_as_bytes_copies_only_views() -> None:
    data = b"abc"
    assert as_bytes(data) is data and as_bytes(memoryview(data)) == data


@pytest.mark.parametrize("size", [10, _OVERLAP_MIN + 1])
def test_with_digest_returns_result_error_and_digest(size: int) -> None:
    data = b"x" * size
    expected = hashlib.sha256(data).hexdigest()

    def digest(d: bytes | memoryview) -> str:
        return hashlib.sha256(d).hexdigest()

    assert _with_digest(data, lambda: 42, digest) == (42, None, expected)

    def fail() -> None:
        raise ValueError("decoder choked")

    result, error, got = _with_digest(data, fail, digest)
    assert result is None and isinstance(error, ValueError) and got == expected
