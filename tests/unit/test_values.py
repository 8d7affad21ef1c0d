"""Every value Airflow's default backend carries comes back with the same type and value, through
storage and inline; what serde changes quietly comes back exact; frames, arrays and bytes through
the Pandas backends; and nothing is silently lossy."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from include.xcom_backends.dbform import Reference, read
from localdev.inprocess import Result
from tests.unit.memory import MemJSON, MemoryStore, MemPandas, push
from tests.values import binary_values, lossy_in_serde, nested, same, serde_values

pytestmark = pytest.mark.usefixtures("mem_backend")

SERDE = serde_values()
LOSSY = lossy_in_serde()
BINARY = binary_values()


def roundtrip(backend: Any, value: Any) -> Any:
    return backend.deserialize_value(Result(push(backend, value)))


def stored_json(stored: Any) -> Any:
    """The object a reference points to, read as plain JSON (as any tool would)."""
    ref = read(stored)
    assert isinstance(ref, Reference) and ref.format == "json"
    key = ref.uri.split("/", 3)[3]
    return json.loads(MemoryStore.objects[("airflow-xcom", key)])


@pytest.mark.parametrize("backend", [MemJSON, MemPandas], ids=["json", "pandas"])
@pytest.mark.parametrize("threshold", ["0", "100000"], ids=["stored", "inline"])
@pytest.mark.parametrize("name", [*SERDE, *LOSSY, "nested_serde", "nested_lossy"])
def test_value_comes_back_with_its_type(
    monkeypatch: pytest.MonkeyPatch, backend: Any, threshold: str, name: str
) -> None:
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__THRESHOLD_BYTES", threshold)
    value = {**SERDE, **LOSSY, "nested_serde": nested(SERDE), "nested_lossy": nested(LOSSY)}[name]
    back = roundtrip(backend, value)
    assert same(value, back), (value, back)


@pytest.mark.parametrize("name", [*SERDE, "nested_serde"])
def test_the_default_backends_rows_read_the_same_after_a_switch(name: str) -> None:
    from airflow.sdk.bases.xcom import BaseXCom

    value = nested(SERDE) if name == "nested_serde" else SERDE[name]
    row = json.loads(json.dumps(BaseXCom.serialize_value(value)))  # as the metadata database keeps it
    expected = BaseXCom.deserialize_value(Result(row))
    assert same(expected, MemJSON.deserialize_value(Result(row)))


@pytest.mark.parametrize("name", ["tuple_nested", "set", "frozenset", "uuid", "date", "decimal", "np_int64"])
def test_the_stored_object_is_json_that_serde_reads(name: str) -> None:
    from airflow.sdk.serde import deserialize

    tree = stored_json(push(MemJSON, SERDE[name]))
    assert same(SERDE[name], deserialize(tree))


def test_serde_loses_what_ours_keeps() -> None:
    from airflow.sdk.bases.xcom import BaseXCom

    for value in (LOSSY["decimal_digits"], LOSSY["int_keys"]):
        assert not same(value, BaseXCom.deserialize_value(Result(BaseXCom.serialize_value(value))))
        assert same(value, roundtrip(MemJSON, value))
    assert stored_json(push(MemJSON, LOSSY["decimal_digits"]))["__data__"] == "12345678901234567890.123456789"


def test_plain_json_is_stored_as_it_is() -> None:
    value = {"a": [1, 2.5, None, True, "x"]}
    assert stored_json(push(MemJSON, value)) == value
    assert read(push(MemJSON, value)).kind == "value"  # type: ignore[union-attr]


@dataclass
class Order:
    id: int
    amount: float


def test_classes_follow_serdes_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.bases.xcom import BaseXCom

    order = Order(1, 2.5)
    stored = push(MemJSON, order)
    default = json.loads(json.dumps(BaseXCom.serialize_value(order)))
    # Not allowed: both backends refuse to build the class, with serde's own error.
    with pytest.raises(ImportError, match="allowed_deserialization_classes"):
        BaseXCom.deserialize_value(Result(default))
    with pytest.raises(ImportError, match="allowed_deserialization_classes"):
        MemJSON.deserialize_value(Result(stored))
    monkeypatch.setenv("AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES", "airflow.* tests.unit.test_values.*")
    _clear_serde_caches()
    try:
        assert MemJSON.deserialize_value(Result(stored)) == order
        assert MemJSON.deserialize_value(Result(default)) == order
    finally:
        monkeypatch.delenv("AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES")
        _clear_serde_caches()


def _clear_serde_caches() -> None:
    from airflow.sdk import serde

    for name in ("_get_patterns", "_get_regexp_patterns", "_match_glob", "_match_regexp"):
        cached = getattr(serde, name)
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()


@pytest.mark.parametrize("threshold", ["0", "100000000"], ids=["stored", "inline"])
@pytest.mark.parametrize("name", list(BINARY))
def test_pandas_backends_hold_frames_arrays_and_bytes(
    monkeypatch: pytest.MonkeyPatch, threshold: str, name: str
) -> None:
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__THRESHOLD_BYTES", threshold)
    value = BINARY[name]
    back = roundtrip(MemPandas, value)
    assert same(value, back), (value, back)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("polars_frame", "parquet"), ("arrow_table", "parquet"), ("ndarray_2d_float32", "npy"), ("bytes", "bin")],
)
def test_each_kind_is_a_plain_file_of_its_format(name: str, fmt: str) -> None:
    ref = read(push(MemPandas, BINARY[name]))
    assert isinstance(ref, Reference) and ref.format == fmt and ref.uri.endswith("." + fmt)
    data = MemoryStore.objects[("airflow-xcom", ref.uri.split("/", 3)[3])]
    if fmt == "bin":
        assert data == BINARY[name]
    if fmt == "npy":
        assert data[:6] == b"\x93NUMPY"
    if fmt == "parquet":
        assert data[:4] == b"PAR1"


@pytest.mark.parametrize("name", list(BINARY))
def test_json_backends_refuse_them_naming_the_backend_that_holds_them(name: str) -> None:
    with pytest.raises(TypeError, match="MemPandas stores pandas, polars and pyarrow frames"):
        push(MemJSON, BINARY[name])
    with pytest.raises(TypeError, match="MemPandas stores"):
        push(MemJSON, {"inside": BINARY[name]})
    assert MemoryStore.calls == []


def test_pandas_backends_refuse_them_inside_a_json_value() -> None:
    with pytest.raises(TypeError, match=r"XCom value\['a'\]\[0\] is a builtins.bytes inside a JSON value"):
        push(MemPandas, {"a": [b"x"]})


def test_object_arrays_are_refused_never_pickled() -> None:
    import numpy as np

    with pytest.raises(TypeError, match="object arrays would need pickle"):
        push(MemPandas, np.array([{"a": 1}, None], dtype=object))
    assert MemoryStore.calls == []


def test_what_cannot_be_stored_exactly_is_refused() -> None:
    import zoneinfo
    from datetime import datetime, timedelta, tzinfo

    class Custom(tzinfo):
        def utcoffset(self, dt: Any) -> timedelta:
            return timedelta(hours=1)

        def dst(self, dt: Any) -> timedelta:
            return timedelta(0)

        def tzname(self, dt: Any) -> str:
            return "custom"

    with pytest.raises(TypeError, match=r"XCom value\[0\]: the time zone"):
        push(MemJSON, [datetime(2026, 1, 1, tzinfo=Custom())])
    with pytest.raises(TypeError, match=r"builtins\.object cannot be stored"):
        push(MemJSON, {"x": object()})
    in_utc = datetime(2026, 1, 1, tzinfo=zoneinfo.ZoneInfo("UTC"))
    assert same(in_utc, roundtrip(MemJSON, in_utc))


def test_nothing_is_imported_for_a_type_the_value_does_not_have() -> None:
    code = (
        "import sys\n"
        "from tests.unit.memory import MemPandas, push\n"
        "import tests.unit.memory as m\n"
        "from include.xcom_backends.codecs import binary_kind\n"
        "import datetime\n"
        "for v in ({'a': [1]}, (1, 2), datetime.date(2026, 1, 1), b'x'):\n"
        "    MemPandas.codec_for(v, None).encode(v) if binary_kind(v) is None else None\n"
        "print(sorted(m for m in ('polars', 'pyarrow', 'pandas', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "polars" not in out and "pyarrow" not in out, out
