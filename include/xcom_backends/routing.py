"""Where a value goes: the stores ``[xcom_storage] stores`` names and the ordered ``[xcom_storage] rules``.

One deployment has one XCom backend class; routing lets that class write to several places. A rule
matches on DAG id, task id and XCom key (glob patterns, as ``fnmatch`` reads them, case-sensitive),
on the value's kind (``json``, ``frame``, ``array``, ``bytes``) and on its size in bytes as the
store it names would hold it, and sends the value either to the metadata database (``inline``) or to
a store. The first rule that matches wins; when none does, today's behaviour holds: below
``threshold_bytes`` inline, otherwise the ``default`` store (the backend class's own, configured by
the other ``[xcom_storage]`` settings).

Both settings are JSON (one line in ``.env``)::

    AIRFLOW__XCOM_STORAGE__STORES={"frames": {"type": "gcs", "conn_id": "gcs_xcom_backend_conn",
                                              "bucket": "airflow-xcom-frames", "compression": "zstd"}}
    AIRFLOW__XCOM_STORAGE__RULES=[{"name": "secrets stay in the database", "key": "secret_*", "to": "inline"},
                                  {"name": "frames to GCS", "kind": "frame", "to": "frames"}]

Everything is validated when the backend first needs it (the first push or pull of a task process,
and ``doctor``), with an error that names the store or rule and the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from include.xcom_backends.errors import XComStorageConfigError
from include.xcom_backends.keys import XComRow
from include.xcom_backends.settings import SECTION, XComStorageSettings

DEFAULT = "default"  # the backend class's own store, configured by the plain [xcom_storage] settings
INLINE = "inline"  # the metadata database
KINDS = ("json", "frame", "array", "bytes")
_STORE_FIELDS = {"type", "conn_id", "bucket", "prefix", "compression", "dataframe_format", "encryption"}
_RULE_FIELDS = {"name", "dag_id", "task_id", "key", "kind", "min_bytes", "max_bytes", "to"}


def kind_of(binary_kind: str | None) -> str:
    """The rule kind of a value, from ``codecs.binary_kind`` (None: a JSON value)."""
    if binary_kind is None:
        return "json"
    if binary_kind == "ndarray":
        return "array"
    if binary_kind in ("bytes", "bytearray"):
        return "bytes"
    return "frame"  # pandas, polars and pyarrow frames and series


@dataclass(frozen=True)
class StoreSpec:
    """One named store: its cloud (``None`` for the backend class's own) and its settings."""

    name: str
    type: str | None
    settings: XComStorageSettings


@dataclass(frozen=True)
class Rule:
    index: int  # 1-based, as a user counts the list
    name: str
    to: str
    dag_id: str | None = None
    task_id: str | None = None
    key: str | None = None
    kinds: tuple[str, ...] | None = None
    min_bytes: int | None = None
    max_bytes: int | None = None

    @property
    def label(self) -> str:
        return f"rule {self.index} ({self.name!r})"

    @property
    def sized(self) -> bool:
        return self.min_bytes is not None or self.max_bytes is not None

    def matches_row(self, row: XComRow, kind: str) -> bool:
        """Everything but the size."""
        for pattern, value in ((self.dag_id, row.dag_id), (self.task_id, row.task_id), (self.key, row.key)):
            if pattern is not None and not fnmatchcase(value or "", pattern):
                return False
        return self.kinds is None or kind in self.kinds

    def matches_size(self, size: int) -> bool:
        return (self.min_bytes is None or size >= self.min_bytes) and (self.max_bytes is None or size < self.max_bytes)


@dataclass(frozen=True)
class Routing:
    stores: dict[str, StoreSpec]  # always holds DEFAULT
    rules: tuple[Rule, ...]

    @property
    def default(self) -> StoreSpec:
        return self.stores[DEFAULT]

    def route(self, row: XComRow, kind: str, size_in: Callable[[StoreSpec], int]) -> tuple[str, Rule | None]:
        """Where a value goes: ``INLINE`` or a store name, and the rule that decided (None: no rule
        matched and the threshold decided). ``size_in(spec)`` is the value's size as ``spec`` would
        hold it (asked only of rules with a size condition, and of the threshold)."""
        for rule in self.rules:
            if not rule.matches_row(row, kind):
                continue
            target = self.stores[DEFAULT] if rule.to == INLINE else self.stores[rule.to]
            if rule.sized and not rule.matches_size(size_in(target)):
                continue
            return rule.to, rule
        default = self.default
        return (INLINE if size_in(default) < default.settings.threshold_bytes else DEFAULT), None

    @classmethod
    def parse(cls, default: XComStorageSettings, stores_json: str, rules_json: str) -> Routing:
        stores = {DEFAULT: StoreSpec(DEFAULT, None, default)}
        stores.update(_parse_stores(default, stores_json))
        return cls(stores, _parse_rules(rules_json, stores))


def _bad(setting: str, what: str, problem: str) -> XComStorageConfigError:
    return XComStorageConfigError(
        f"Invalid [{SECTION}] {setting}: {what}: {problem}. Fix AIRFLOW__{SECTION.upper()}__{setting.upper()} "
        f"or the [{SECTION}] section of airflow.cfg (docs/routing.md)."
    )


def _load(setting: str, text: str, expected: type) -> Any:
    if not text.strip():
        return expected()
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise _bad(setting, "the value", f"not valid JSON ({exc})") from None
    if not isinstance(value, expected):
        raise _bad(setting, "the value", f"expected a JSON {'object' if expected is dict else 'list'}")
    return value


def _parse_stores(default: XComStorageSettings, text: str) -> dict[str, StoreSpec]:
    specs: dict[str, StoreSpec] = {}
    for name, body in _load("stores", text, dict).items():
        what = f"store {name!r}"
        if name in (DEFAULT, INLINE) or not name or "/" in name:
            raise _bad("stores", what, f"the names {DEFAULT!r} and {INLINE!r} are taken, and a name needs no '/'")
        if not isinstance(body, dict):
            raise _bad("stores", what, "expected a JSON object with type, conn_id and bucket")
        unknown = set(body) - _STORE_FIELDS
        if unknown:
            raise _bad("stores", what, f"unknown field(s) {sorted(unknown)}; known: {sorted(_STORE_FIELDS)}")
        from include.xcom_backends.stores import STORE_CLASSES

        kind = body.get("type")
        if kind not in STORE_CLASSES:
            raise _bad("stores", what, f"type {kind!r}: expected one of {', '.join(STORE_CLASSES)}")
        for required in ("conn_id", "bucket"):
            if not isinstance(body.get(required), str) or not body[required]:
                raise _bad("stores", what, f"{required} is required (a non-empty string)")
        settings = XComStorageSettings.parse(
            bucket=body["bucket"],
            prefix=str(body.get("prefix", default.prefix)),
            conn_id=body["conn_id"],
            threshold_bytes=default.threshold_bytes,
            compression=str(body.get("compression", default.compression)),
            dataframe_format=str(body.get("dataframe_format", default.dataframe_format)),
            timeout_seconds=default.timeout_seconds,
            max_attempts=default.max_attempts,
            store=name,
            encryption=body.get("encryption"),
        )
        if settings.encryption is not None:
            settings.encryption.check_type(kind)
        specs[name] = StoreSpec(name, kind, settings)
    return specs


def _pattern(setting_what: str, body: dict[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is not None and (not isinstance(value, str) or not value):
        raise _bad("rules", setting_what, f"{field} must be a non-empty glob pattern string")
    return value


def _size(setting_what: str, body: dict[str, Any], field: str) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad("rules", setting_what, f"{field} must be a whole number of bytes >= 0, got {value!r}")
    return value


def _parse_rules(text: str, stores: dict[str, StoreSpec]) -> tuple[Rule, ...]:
    rules = []
    for index, body in enumerate(_load("rules", text, list), start=1):
        what = f"rule {index}"
        if not isinstance(body, dict):
            raise _bad("rules", what, "expected a JSON object with name, the conditions and to")
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise _bad("rules", what, "name is required (a non-empty string)")
        what = f"rule {index} ({name!r})"
        unknown = set(body) - _RULE_FIELDS
        if unknown:
            raise _bad("rules", what, f"unknown field(s) {sorted(unknown)}; known: {sorted(_RULE_FIELDS)}")
        to = body.get("to")
        if to != INLINE and to not in stores:
            raise _bad(
                "rules",
                what,
                f"to = {to!r} names no store; expected {INLINE!r} or one of "
                f"{', '.join(repr(s) for s in stores)} (define stores in [{SECTION}] stores)",
            )
        kinds = body.get("kind")
        if kinds is not None:
            kinds = [kinds] if isinstance(kinds, str) else kinds
            if not isinstance(kinds, list) or not kinds or any(k not in KINDS for k in kinds):
                raise _bad("rules", what, f"kind {body.get('kind')!r}: expected one of {', '.join(KINDS)} or a list")
        low, high = _size(what, body, "min_bytes"), _size(what, body, "max_bytes")
        if low is not None and high is not None and high <= low:
            raise _bad("rules", what, f"max_bytes {high} must be above min_bytes {low}")
        rules.append(
            Rule(
                index=index,
                name=name,
                to=str(to),
                dag_id=_pattern(what, body, "dag_id"),
                task_id=_pattern(what, body, "task_id"),
                key=_pattern(what, body, "key"),
                kinds=tuple(kinds) if kinds is not None else None,
                min_bytes=low,
                max_bytes=high,
            )
        )
    return tuple(rules)
