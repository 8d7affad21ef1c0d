"""Exceptions raised by the XCom storage backends.

Every message says what failed, on which object or setting, and what to do about it.
"""

from __future__ import annotations


class XComStorageError(RuntimeError):
    """Base class: storing or loading an offloaded XCom failed."""


class XComStorageConfigError(XComStorageError, ValueError):
    """A ``[xcom_storage]`` setting is invalid."""


class XComObjectMissingError(XComStorageError):
    """The object a reference points to does not exist (any more)."""


class XComIntegrityError(XComStorageError):
    """The object a reference points to does not match the size or checksum recorded at push time."""


class XComReferenceError(XComStorageError):
    """A stored reference is malformed, or points anywhere but under its own row's location.

    ``reason`` is the one line the UI shows in the row's card (the page already names the row)."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message
