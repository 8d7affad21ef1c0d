"""Every form an XCom row's value can take in Airflow's metadata database, written and read here only.

- ``Reference``: the value is an object in storage; the row holds its URI, format, size and an
  integrity digest (``integrity.py``: keyed when the store has a customer key).
- ``InlineBytes``: a value below the threshold that is not plain JSON: a frame, array or bytes value
  as our codec's bytes in base64, or typed JSON (a tuple, datetime, Decimal...) as its JSON tree.
- ``InlineJSON``: a JSON value below the threshold that contains one of the keys that mark our forms
  or Airflow's serde forms, wrapped so it comes back exactly as pushed.
- ``Plain``: anything else: a JSON value kept as it is, or a row written by Airflow's default backend.

The first three carry the marker key ``__xcom_storage__``: the reference's format version (1), or
``"inline"`` for the two inline envelopes. Other modules use these classes, never raw keys.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from include.xcom_backends.errors import XComReferenceError
from include.xcom_backends.integrity import SHA256
from include.xcom_backends.integrity import split as split_digest
from include.xcom_backends.routing import DEFAULT

if TYPE_CHECKING:
    from include.xcom_backends.codecs import Encoded

MARKER = "__xcom_storage__"
VERSION = 1  # the marker's value in a reference
INLINE = "inline"  # the marker's value in an inline envelope

# Keys that would make a plain JSON value look like one of our forms or like Airflow serde output on
# the way back; values containing them are wrapped (InlineJSON) so they come back exactly as pushed.
_RESERVED = (b'"__xcom_storage__"', b'"__classname__"', b'"__type"', b'"__var"', b'"__data__"')


@dataclass(frozen=True)
class Reference:
    uri: str
    format: str
    size: int
    digest: str  # "<algorithm>:<hex>" (integrity.py)
    kind: str = "value"
    # The name of the store it was written to ([xcom_storage] stores; "default": the backend class's
    # own). A read follows it only to a store the configuration names, and only inside that store.
    store: str = DEFAULT

    def to_json(self) -> dict[str, Any]:
        fields = asdict(self)
        if fields["store"] == DEFAULT:  # rows written before routing read the same
            del fields["store"]
        return {MARKER: VERSION, **fields}

    @property
    def digest_algorithm(self) -> str:
        return split_digest(self.digest)[0]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reference:
        try:
            # Rows written before keyed digests hold an unkeyed "sha256" field.
            digest = str(data["digest"]) if "digest" in data else f"{SHA256}:{data['sha256']}"
            split_digest(digest)
            return cls(
                uri=str(data["uri"]),
                format=str(data["format"]),
                size=int(data["size"]),
                digest=digest,
                kind=str(data.get("kind", "value")),
                store=str(data.get("store", DEFAULT)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise XComReferenceError(f"Malformed XCom storage reference {data!r}: {exc}") from exc

    def split_uri(self) -> tuple[str, str, str]:
        """Return (scheme, bucket, key)."""
        scheme, sep, rest = self.uri.partition("://")
        bucket, slash, key = rest.partition("/")
        if not sep or not slash or not bucket or not key:
            raise XComReferenceError(f"Malformed object URI {self.uri!r} in XCom storage reference")
        return scheme, bucket, key


@dataclass(frozen=True)
class InlineBytes:
    data: bytes
    format: str
    kind: str


@dataclass(frozen=True)
class InlineJSON:
    value: Any


@dataclass(frozen=True)
class Plain:
    value: Any


RowForm = Reference | InlineBytes | InlineJSON | Plain


def inline(value: Any, encoded: Encoded) -> Any:
    """The database form of a value below the threshold (``encoded``: what its codec made of it)."""
    if encoded.format == "json" and encoded.kind == "typed":  # typed JSON, kept readable in the row
        return {MARKER: INLINE, "format": "json", "kind": "typed", "json": json.loads(bytes(encoded.data))}
    if encoded.format != "json":  # a frame, array or bytes: our codec's bytes
        b64 = base64.b64encode(encoded.data).decode("ascii")
        return {MARKER: INLINE, "format": encoded.format, "kind": encoded.kind, "base64": b64}
    if any(marker in encoded.data for marker in _RESERVED):
        return {MARKER: INLINE, "value": value}
    return value


def is_reference(value: object) -> bool:
    """Whether a stored value claims to be a reference (it may still be malformed: see ``read``)."""
    return isinstance(value, dict) and value.get(MARKER) == VERSION and "uri" in value


def read(value: Any) -> RowForm:
    """The form of a stored value (as ``stored_value`` returns it). A malformed reference raises
    ``XComReferenceError``."""
    if is_reference(value):
        return Reference.from_json(value)
    if isinstance(value, dict) and value.get(MARKER) == INLINE:
        if "json" in value:
            return InlineBytes(json.dumps(value["json"]).encode(), "json", str(value.get("kind", "typed")))
        if "base64" in value:
            try:
                return InlineBytes(
                    base64.b64decode(value["base64"]), str(value["format"]), str(value.get("kind", "value"))
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise XComReferenceError(f"Malformed inline XCom value: {exc}") from exc
        return InlineJSON(value.get("value"))
    return Plain(value)


def stored_value(column: Any) -> Any:
    """An XCom row's ``value`` column as the backend returned it (Airflow may keep it JSON-encoded)."""
    if isinstance(column, (str, bytes)):
        try:
            return json.loads(column)
        except ValueError:
            return column
    return column
