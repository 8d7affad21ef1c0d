"""The small JSON reference kept in Airflow's metadata database for an offloaded value."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from include.xcom_backends.errors import XComReferenceError

MARKER = "__xcom_storage__"
VERSION = 1


@dataclass(frozen=True)
class Reference:
    uri: str
    format: str
    size: int
    sha256: str
    kind: str = "value"

    def to_json(self) -> dict[str, Any]:
        return {MARKER: VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reference:
        try:
            return cls(
                uri=str(data["uri"]),
                format=str(data["format"]),
                size=int(data["size"]),
                sha256=str(data["sha256"]),
                kind=str(data.get("kind", "value")),
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


def is_reference(value: object) -> bool:
    return isinstance(value, dict) and value.get(MARKER) == VERSION and "uri" in value


def stored_value(column: Any) -> Any:
    """An XCom row's ``value`` column as the backend returned it (Airflow may keep it JSON-encoded)."""
    if isinstance(column, (str, bytes)):
        import json

        try:
            return json.loads(column)
        except ValueError:
            return column
    return column
