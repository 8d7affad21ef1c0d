"""The values the tests push: every type Airflow's serde round-trips, the ones it changes, and the
kinds only the Pandas backends hold; and ``same``, which compares by type and value (not ``==``
alone: ``Decimal("1.10")`` is not ``Decimal("1.1")``, ``np.float64`` is not ``float``, a datetime's zone
name, offset and fold count)."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
import zoneinfo
from typing import Any


def serde_values() -> dict[str, Any]:
    """Every kind of value Airflow's default backend (serde) round-trips, by name."""
    import numpy as np
    import pendulum

    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    return {
        "naive_datetime": dt.datetime(2026, 3, 29, 1, 59, 59, 999999),
        "zoneinfo_datetime_dst": dt.datetime(2026, 3, 29, 3, 0, 1, tzinfo=berlin),
        "zoneinfo_datetime_fold": dt.datetime(2026, 10, 25, 2, 30, tzinfo=berlin, fold=1),
        "utc_datetime": dt.datetime(2026, 11, 23, 4, 5, 6, 7, tzinfo=dt.UTC),
        "pendulum_datetime": pendulum.datetime(2026, 10, 25, 2, 30, 15, tz="America/New_York"),
        "pendulum_utc": pendulum.datetime(2026, 1, 1, tz="UTC"),
        "date": dt.date(2026, 2, 28),
        "pendulum_date": pendulum.date(2026, 2, 28),
        "timedelta": dt.timedelta(days=-2, seconds=5, microseconds=7),
        "tuple_nested": (1, ("a", (None, 2.5)), []),
        "set": {1, 2, 3},
        "frozenset": frozenset({"x", "y"}),
        "decimal": decimal.Decimal("1.10"),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "np_float64": np.float64(0.1),
        "np_float32": np.float32(0.1),
        "np_int64": np.int64(-(2**62)),
        "np_uint8": np.uint8(255),
        "np_bool": np.bool_(True),
    }


def lossy_in_serde() -> dict[str, Any]:
    """Values serde changes quietly, which ours keep exactly."""
    import numpy as np

    return {
        "decimal_digits": decimal.Decimal("12345678901234567890.123456789"),
        "int_keys": {1: "a", 2: "b"},
        "tuple_keys": {(1, "x"): [1.5]},
        "reserved_key": {"__classname__": "not a class", "__data__": 1},
        "nan": float("nan"),
        "infinities": [float("inf"), float("-inf")],
        "np_complex": np.complex128(1 - 2j),
        "np_nan": np.float64("nan"),
    }


def nested(values: dict[str, Any]) -> dict[str, Any]:
    """All of ``values`` inside a dict and inside a list, in one value."""
    return {"in_a_dict": dict(values), "in_a_list": list(values.values())}


def binary_values() -> dict[str, Any]:
    """The kinds only the Pandas backends hold (each as the whole XCom value)."""
    import numpy as np
    import polars as pl
    import pyarrow as pa

    return {
        "polars_frame": pl.DataFrame(
            {
                "i": [1, None, 3],
                "s": ["a", None, "日本"],
                "c": pl.Series(["x", "y", "x"], dtype=pl.Categorical),
                "t": [dt.datetime(2026, 1, 1), None, dt.datetime(2026, 3, 29, 2)],
            }
        ),
        "polars_series": pl.Series("n", [1.5, None, 2.5], dtype=pl.Float32),
        "arrow_table": pa.table(
            {
                "a": pa.array([1, 2], pa.int16()),
                "b": pa.array(["x", None], pa.large_string()),
                "ts": pa.array([1, 2], pa.timestamp("us", "Europe/Berlin")),
            }
        ),
        "arrow_batch": pa.record_batch({"d": pa.array([1.5, None]), "l": pa.array([[1], []], pa.list_(pa.int32()))}),
        "ndarray_2d_float32": np.arange(12, dtype=np.float32).reshape(3, 4),
        "ndarray_datetime": np.array(["2026-01-01T00:00", "NaT"], dtype="datetime64[ns]"),
        "ndarray_structured": np.array([(1, b"ab")], dtype=[("x", "<i4"), ("y", "S2")]),
        "ndarray_unicode_0d": np.array("héllo"),
        "ndarray_empty": np.empty((0, 3), dtype=np.complex64),
        "bytes": bytes(range(256)),
        "bytearray": bytearray(b"\x00\xff"),
    }


def same(a: Any, b: Any) -> bool:
    """Whether ``b`` is ``a`` as it was pushed: same type and value, all the way down."""
    if type(a) is not type(b):
        return False
    module = type(a).__module__.partition(".")[0]
    if module == "polars":
        return bool(a.equals(b)) and (a.schema == b.schema if hasattr(a, "schema") else a.dtype == b.dtype)
    if module == "pyarrow":
        return bool(a.schema.equals(b.schema, check_metadata=True) and a.equals(b))
    if module == "numpy" and type(a).__name__ == "ndarray":
        import numpy as np

        nan = a.dtype.kind in "fcmM"
        return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=nan))
    if isinstance(a, float) or (module == "numpy" and getattr(a, "dtype", None) is not None and a.dtype.kind in "fc"):
        return bool(a == b or (a != a and b != b)) and repr(a) == repr(b)
    if isinstance(a, decimal.Decimal):
        return str(a) == str(b)
    if isinstance(a, dt.datetime):
        return (
            a == b
            and a.fold == b.fold
            and a.utcoffset() == b.utcoffset()
            and a.replace(tzinfo=None) == b.replace(tzinfo=None)
            and type(a.tzinfo) is type(b.tzinfo)
            and str(a.tzinfo) == str(b.tzinfo)
        )
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        keys_same = all(type(k) is type(j) for k, j in zip(a, b, strict=True))
        return list(a) == list(b) and keys_same and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (set, frozenset)):
        return a == b
    return bool(a == b) and (not isinstance(a, float) or not math.isnan(a))
