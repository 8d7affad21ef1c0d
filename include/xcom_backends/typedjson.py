"""Typed JSON: every value Airflow's serde round-trips, as JSON any tool can read, and back exactly.

Plain JSON (dicts with str keys, lists, str, int, finite float, bool, None, each of exactly that
type) is written as it is. Anything else is written in serde's envelope
``{"__classname__": ..., "__version__": ..., "__data__": ...}``:

- tuple, set, frozenset, UUID, date: serde's own form (serde reads ours, and we read serde's).
- Decimal: its digits as a string (serde's reader takes that too; serde itself writes a float).
- datetime and pendulum DateTime: serde's ``timestamp`` and ``tz``, plus ``iso`` (exact to the
  microsecond, with the UTC offset), which we read. The time zone keeps its class and name
  (zoneinfo, pendulum, fixed offsets, ``datetime.timezone``).
- timedelta: serde's total seconds when that is exact, else days/seconds/microseconds.
- numpy scalars: serde's form (an ``np.float64`` stays ``np.float64``); complex as [real, imag].
- dicts with non-str keys, or with serde's reserved keys: ``builtins.dict`` with [key, value] pairs.
- NaN and infinities: ``builtins.float`` with "nan", "inf" or "-inf".
- dataclasses, attrs and pydantic classes, and classes with ``serialize()``: serde's own form,
  read back by serde under ``[core] allowed_deserialization_classes``, as the default backend does.

Reading never imports a class named in the data, except through serde and its allow-list.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import Any

CLASSNAME, VERSION, DATA = "__classname__", "__version__", "__data__"
_RESERVED = (CLASSNAME, VERSION, DATA, "__type", "__var", "__xcom_storage__")
_PLAIN = (str, int, bool, type(None))


def is_plain(value: Any) -> bool:
    """Whether JSON holds ``value`` exactly as it is (and it has none of the reserved keys)."""
    kind = type(value)
    if kind in _PLAIN:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(is_plain(item) for item in value)
    if kind is dict:
        return all(type(k) is str and k not in _RESERVED and is_plain(v) for k, v in value.items())
    return False


def _env(classname: str, data: Any, version: int = 1) -> dict[str, Any]:
    return {CLASSNAME: classname, VERSION: version, DATA: data}


def _float(value: float) -> Any:
    if math.isfinite(value):
        return float(value)
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _tz(tz: Any) -> list[Any] | None:
    """A time zone as serde writes it ([name or offset, classname, version, true]), exact class kept."""
    import datetime as dt
    import zoneinfo

    if tz is None:
        return None
    module = type(tz).__module__
    if module.startswith("pendulum"):
        from pendulum.tz.timezone import FixedTimezone

        if isinstance(tz, FixedTimezone):
            return [tz.offset, "pendulum.tz.timezone.FixedTimezone", 1, True]
        return [tz.name, "pendulum.tz.timezone.Timezone", 1, True]
    if type(tz) is zoneinfo.ZoneInfo and tz.key:
        return [tz.key, "zoneinfo.ZoneInfo", 1, True]
    if type(tz) is dt.timezone:
        offset = tz.utcoffset(None)
        return [int(offset.total_seconds()), "datetime.timezone", 1, True]
    raise TypeError(
        f"the time zone {tz!r} ({module}.{type(tz).__qualname__}) cannot be stored exactly; use a "
        "zoneinfo.ZoneInfo, a pendulum time zone or datetime.timezone"
    )


def _tz_back(spec: list[Any] | None) -> Any:
    import datetime as dt
    import zoneinfo

    if spec is None:
        return None
    data, classname = spec[0], spec[1]
    if classname == "zoneinfo.ZoneInfo":
        return zoneinfo.ZoneInfo(data)
    if classname == "datetime.timezone":
        return dt.UTC if data == 0 else dt.timezone(dt.timedelta(seconds=data))
    import pendulum

    if classname == "pendulum.tz.timezone.FixedTimezone":
        return pendulum.FixedTimezone(0 if data == "UTC" else int(data))
    if classname == "pendulum.tz.timezone.Timezone":
        return pendulum.timezone(data)
    raise ValueError(f"unknown time zone class {classname!r}")


def _numpy(value: Any) -> dict[str, Any]:
    import numpy as np

    name = f"numpy.{type(value).__name__}"
    if isinstance(value, np.bool_):
        return _env(name, bool(value))
    if isinstance(value, np.integer):
        return _env(name, int(value))
    if isinstance(value, np.floating):
        return _env(name, _float(float(value)))
    if isinstance(value, np.complexfloating):
        return _env(name, [_float(float(value.real)), _float(float(value.imag))])
    raise TypeError(f"the numpy scalar {value!r} of type {name} cannot be stored as JSON")


def to_tree(value: Any, path: str = "value", refuse: Callable[[Any, str], None] | None = None) -> Any:
    """``value`` as a JSON tree (see the module docstring). ``refuse(value, path)`` may raise for
    values a backend keeps elsewhere; a value nothing can hold exactly raises ``TypeError``."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is float:
        return value if math.isfinite(value) else _env("builtins.float", _float(value))
    if kind is list:
        return [to_tree(item, f"{path}[{i}]", refuse) for i, item in enumerate(value)]
    if kind is dict:
        if all(type(k) is str and k not in _RESERVED for k in value):
            return {k: to_tree(v, f"{path}[{k!r}]", refuse) for k, v in value.items()}
        pairs = [
            [to_tree(k, f"{path} key {k!r}", refuse), to_tree(v, f"{path}[{k!r}]", refuse)] for k, v in value.items()
        ]
        return _env("builtins.dict", pairs)
    if kind in (tuple, set, frozenset):
        items = [to_tree(item, f"{path}[{i}]", refuse) for i, item in enumerate(value)]
        return _env(f"builtins.{kind.__name__}", items)
    if refuse is not None:
        refuse(value, path)
    return _typed(value, path)


def _typed(value: Any, path: str) -> Any:
    import datetime as dt
    import decimal
    import uuid

    kind = type(value)
    module = kind.__module__
    if kind is decimal.Decimal:
        return _env("decimal.Decimal", str(value))  # every digit; NaN and Infinity too
    if kind is uuid.UUID:
        return _env("uuid.UUID", str(value))
    if isinstance(value, dt.datetime) and (kind is dt.datetime or module.startswith("pendulum")):
        classname = "datetime.datetime" if kind is dt.datetime else "pendulum.datetime.DateTime"
        try:
            tz = _tz(value.tzinfo)
        except TypeError as exc:
            raise TypeError(f"XCom {path}: {exc}") from None
        data = {"timestamp": value.timestamp(), "tz": tz, "iso": value.isoformat(), "fold": value.fold}
        return _env(classname, data, 2)
    if kind is dt.date or (isinstance(value, dt.date) and module.startswith("pendulum")):
        return _env("datetime.date" if kind is dt.date else "pendulum.date.Date", value.isoformat(), 2)
    if kind is dt.timedelta:
        seconds = value.total_seconds()
        exact = dt.timedelta(seconds=seconds) == value
        data = seconds if exact else {"days": value.days, "seconds": value.seconds, "microseconds": value.microseconds}
        return _env("datetime.timedelta", data, 2)
    if module == "numpy" and kind.__name__ != "ndarray":
        return _numpy(value)
    if isinstance(value, enum.Enum):
        # As Airflow's serde: the member's value (its class is not recorded).
        return to_tree(value.value, path)
    if isinstance(value, (str, int, float)) and not module.startswith(("numpy", "pandas")):
        # A subclass of a JSON type (as serde: stored as that type).
        base = next(b for b in (bool, str, int, float) if isinstance(value, b))
        return to_tree(base(value), path)
    return _serde(value, path)


def _serde(value: Any, path: str) -> Any:
    """A class serde knows (dataclass, attrs, pydantic, ``serialize()``), in serde's own form."""
    from airflow.sdk.serde import serialize

    try:
        return serialize(value)
    except (TypeError, AttributeError, RecursionError) as exc:
        raise TypeError(
            f"XCom {path} of type {type(value).__module__}.{type(value).__qualname__} cannot be stored: {exc}"
        ) from None


def from_tree(tree: Any) -> Any:
    """The value a tree written by ``to_tree`` (or by Airflow's serde) stands for."""
    if isinstance(tree, list):
        return [from_tree(item) for item in tree]
    if not isinstance(tree, dict):
        return tree
    if CLASSNAME not in tree:
        return {k: from_tree(v) for k, v in tree.items()}
    classname, data = tree[CLASSNAME], tree.get(DATA)
    reader = _READERS.get(classname)
    if reader is not None:
        return reader(data)
    if classname.startswith("numpy.") and classname[6:] in _NUMPY_SCALARS:
        return _numpy_back(classname[6:], data)
    from airflow.sdk.serde import deserialize

    return deserialize(tree)  # a class serde wrote: its allow-list decides


def _float_back(data: Any) -> float:
    return float(data)  # "nan", "inf", "-inf"


def _datetime_back(data: dict[str, Any], pendulum_class: bool) -> Any:
    import datetime as dt

    # The wall time, its fold and the time zone are the value (PEP 495), even inside a DST gap.
    value = dt.datetime.fromisoformat(data["iso"]).replace(tzinfo=_tz_back(data["tz"]), fold=int(data["fold"]))
    if pendulum_class:
        import pendulum

        moment = pendulum.instance(value, tz=value.tzinfo) if value.tzinfo else pendulum.instance(value).naive()
        return moment.replace(fold=value.fold)
    return value


def _timedelta_back(data: Any) -> Any:
    import datetime as dt

    if isinstance(data, dict):
        return dt.timedelta(days=data["days"], seconds=data["seconds"], microseconds=data["microseconds"])
    return dt.timedelta(seconds=float(data))


def _date_back(data: str, pendulum_class: bool) -> Any:
    import datetime as dt

    if pendulum_class:
        import pendulum

        return pendulum.Date.fromisoformat(data)
    return dt.date.fromisoformat(data)


def _decimal_back(data: Any) -> Any:
    import decimal

    return decimal.Decimal(str(data))


def _uuid_back(data: str) -> Any:
    import uuid

    return uuid.UUID(data)


_NUMPY_SCALARS = frozenset(
    {"bool", "bool_"}
    | {"int8", "int16", "int32", "int64", "intc", "intp", "int_"}
    | {"uint8", "uint16", "uint32", "uint64", "uintc", "uintp"}
    | {"float16", "float32", "float64", "longdouble", "complex64", "complex128", "clongdouble"}
)


def _numpy_back(name: str, data: Any) -> Any:
    import numpy as np

    cls = getattr(np, name)
    if isinstance(data, list):
        return cls(complex(float(data[0]), float(data[1])))
    return cls(float(data) if isinstance(data, str) else data)


_READERS: dict[str, Callable[[Any], Any]] = {
    "builtins.tuple": lambda data: tuple(from_tree(item) for item in data),
    "builtins.set": lambda data: {from_tree(item) for item in data},
    "builtins.frozenset": lambda data: frozenset(from_tree(item) for item in data),
    "builtins.dict": lambda data: {from_tree(k): from_tree(v) for k, v in data},
    "builtins.float": _float_back,
    "decimal.Decimal": _decimal_back,
    "uuid.UUID": _uuid_back,
    "datetime.datetime": lambda data: _datetime_back(data, False),
    "pendulum.datetime.DateTime": lambda data: _datetime_back(data, True),
    "datetime.date": lambda data: _date_back(data, False),
    "pendulum.date.Date": lambda data: _date_back(data, True),
    "datetime.timedelta": _timedelta_back,
}
