"""The BaseXCom glue with an in-memory store (unit level; real servers are in tests/integration)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pandas as pd
import pytest

from include.xcom_backends.dbform import MARKER, is_reference
from include.xcom_backends.errors import XComIntegrityError, XComObjectMissingError, XComReferenceError
from localdev.inprocess import Result
from tests.unit.memory import MemJSON, MemoryStore, MemPandas, push, stored_row

pytestmark = pytest.mark.usefixtures("mem_backend")


def test_reference_is_small_and_complete() -> None:
    ref = push(MemJSON, {"numbers": list(range(10_000))})
    assert is_reference(ref)
    assert ref["uri"].startswith("mem://airflow-xcom/xcom/d/r/t/-1/return_value/") and ref["uri"].endswith(".json")
    assert ref["format"] == "json" and ref["size"] > 40_000 and ref["digest"].startswith("sha256:")
    assert len(json.dumps(ref)) < 1024
    assert MemJSON.deserialize_value(Result(ref)) == {"numbers": list(range(10_000))}


def test_dataframe_goes_as_parquet_and_comes_back_identical() -> None:
    df = pd.DataFrame({"a": [1, 2], "b": pd.array([None, 2], dtype="Int64")})
    ref = push(MemPandas, df)
    assert ref["format"] == "parquet" and ref["uri"].endswith(".parquet")
    pd.testing.assert_frame_equal(MemPandas.deserialize_value(Result(ref)), df)


def test_csv_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__DATAFRAME_FORMAT", "csv")
    ref = push(MemPandas, pd.DataFrame({"a": [1, 2]}))
    assert ref["format"] == "csv" and ref["uri"].endswith(".csv")


def test_json_backend_refuses_dataframe() -> None:
    with pytest.raises(TypeError, match="DataFrame"):
        push(MemJSON, pd.DataFrame({"a": [1]}))
    assert MemoryStore.calls == []


def test_below_threshold_stays_in_db_without_storage_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__THRESHOLD_BYTES", "1000")
    stored = push(MemJSON, {"small": True})
    assert stored == {"small": True}
    assert MemJSON.deserialize_value(Result(stored)) == {"small": True}
    assert MemoryStore.calls == []
    assert is_reference(push(MemJSON, "x" * 2000))


@pytest.mark.parametrize("text", ["s3://airflow-xcom/xcom/d/r/t/-1/return_value/x.json", "xcom_s3://r/t/data.json"])
def test_uri_looking_string_is_returned_as_string(text: str) -> None:
    stored = push(MemJSON, text)
    assert MemJSON.deserialize_value(Result(stored)) == text
    assert MemoryStore.calls == ["put", "get"]


def test_reference_looking_user_dict_below_threshold_is_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__THRESHOLD_BYTES", "100000")
    fake = {MARKER: 1, "uri": "mem://airflow-xcom/xcom/secret", "format": "json", "size": 1, "sha256": "0" * 64}
    stored = push(MemJSON, fake)
    assert MemJSON.deserialize_value(Result(stored)) == fake
    assert MemoryStore.calls == []


def test_missing_object_names_the_uri() -> None:
    ref = push(MemJSON, [1, 2, 3])
    MemoryStore.objects.clear()
    with pytest.raises(XComObjectMissingError, match=ref["uri"]):
        MemJSON.deserialize_value(Result(ref))


def test_corrupted_object_is_caught_by_checksum() -> None:
    ref = push(MemJSON, [1, 2, 3])
    (loc,) = MemoryStore.objects
    MemoryStore.objects[loc] = b"[1,2,4]"
    with pytest.raises(XComIntegrityError, match="corrupted"):
        MemJSON.deserialize_value(Result(ref))


@pytest.mark.parametrize(
    "uri",
    [
        "mem://other-bucket/xcom/a.json",
        "mem://airflow-xcom/elsewhere/a.json",
        "mem://airflow-xcom/xcom/../a.json",
        "s3://airflow-xcom/xcom/a.json",
    ],
)
def test_crafted_reference_outside_bucket_and_prefix_is_refused(uri: str) -> None:
    ref = push(MemJSON, [1])
    ref["uri"] = uri
    with pytest.raises(XComReferenceError, match="outside the configured location"):
        MemJSON.deserialize_value(Result(ref))
    with pytest.raises(XComReferenceError):
        MemJSON.purge(Result(ref))
    assert "delete" not in MemoryStore.calls


def test_purge_deletes_the_object() -> None:
    ref = push(MemJSON, [1])
    assert len(MemoryStore.objects) == 1
    MemJSON.purge(stored_row(ref))
    assert MemoryStore.objects == {}
    MemJSON.purge(Result({"plain": "value"}))  # not ours: nothing to do


@pytest.mark.parametrize(
    "value",
    [
        pd.DataFrame({"a": pd.array([1, None], dtype="Int64"), "c": pd.Categorical(["x", "y"])}),
        pd.Series([1.5, 2.5], name="s"),
        {"__classname__": "builtins.tuple", "__version__": 1, "__data__": [1, 2]},
        {"nested": [{"__type": "dict", "__var": {}}]},
    ],
)
def test_inline_values_come_back_exactly_without_storage(monkeypatch: pytest.MonkeyPatch, value: Any) -> None:
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__THRESHOLD_BYTES", "1000000")
    stored = push(MemPandas, value)
    back = MemPandas.deserialize_value(Result(stored))
    if isinstance(value, pd.DataFrame):
        pd.testing.assert_frame_equal(back, value)
    elif isinstance(value, pd.Series):
        pd.testing.assert_series_equal(back, value)
    else:
        assert back == value
    assert MemoryStore.calls == []


def test_rows_of_the_default_backend_still_read() -> None:
    from airflow.sdk.bases.xcom import BaseXCom

    assert MemJSON.deserialize_value(Result(BaseXCom.serialize_value((1, 2)))) == (1, 2)


def test_missing_connection_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from include.xcom_backends.errors import XComStorageConfigError

    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__CONN_ID", "no_such_conn")
    with pytest.raises(XComStorageConfigError, match=r"'no_such_conn' could not be loaded.*AIRFLOW_CONN_NO_SUCH_CONN"):
        push(MemJSON, [1])


def test_the_doctor_checks_nothing_for_a_backend_not_ours_and_names_a_path_that_cannot_be_imported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from include.xcom_backends.ops.cli import main

    assert main(["doctor", "--backend", "airflow.sdk.bases.xcom.BaseXCom"]) == 0
    assert "Airflow's default backend" in capsys.readouterr().out
    assert main(["doctor", "--backend", "airflow.sdk.bases.xcom.BaseXCom", "--strict"]) == 1
    assert main(["doctor", "--backend", "include.xcom_backends.S3PandasXComBackendd"]) == 1
    err = capsys.readouterr().err
    assert "names 'include.xcom_backends.S3PandasXComBackendd', which cannot be imported" in err
    assert "AIRFLOW__CORE__XCOM_BACKEND" in err


# --- the integrity digest: what a reader of the metadata database learns from it -----------------
KEY = bytes(range(32))


class CustomerKeyStore(MemoryStore):
    """The in-memory store configured as an S3 store with a customer key (sse-c)."""

    type_name = "s3"


class MemCustomerKey(MemJSON):
    store_class = CustomerKeyStore


def use_customer_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MEM_CONN",
        json.dumps({"conn_type": "generic", "extra": {"encryption_key": base64.b64encode(KEY).decode()}}),
    )
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__ENCRYPTION", '{"mode": "sse-c"}')


@pytest.fixture
def customer_key(mem_backend: None, monkeypatch: pytest.MonkeyPatch) -> None:
    use_customer_key(monkeypatch)


def test_unencrypted_digest_is_the_sha256_of_the_stored_bytes() -> None:
    ref = push(MemJSON, ["guess", 1])
    ((_, stored),) = MemoryStore.objects.items()
    assert ref["digest"] == f"sha256:{hashlib.sha256(stored).hexdigest()}"


@pytest.mark.usefixtures("customer_key")
def test_with_a_customer_key_the_digest_does_not_confirm_a_guess() -> None:
    """A reader of the metadata database who guesses the value cannot check the guess against the row."""
    value = {"salary": 123456}
    ref = push(MemCustomerKey, value)
    ((_, stored),) = MemoryStore.objects.items()
    algorithm, hexdigest = ref["digest"].split(":")
    assert algorithm == "hmac-sha256" and "sha256" not in ref
    guesses = [hashlib.sha256(stored).hexdigest(), hashlib.md5(stored).hexdigest(), hashlib.sha1(stored).hexdigest()]
    assert hexdigest not in guesses
    # Only the key (derived from the customer key, never the customer key itself) reproduces it.
    assert hexdigest != hmac.new(KEY, stored, "sha256").hexdigest()
    assert MemCustomerKey.deserialize_value(Result(ref)) == value


@pytest.mark.usefixtures("customer_key")
def test_keyed_digest_still_catches_corruption() -> None:
    ref = push(MemCustomerKey, [1, 2, 3])
    (loc,) = MemoryStore.objects
    MemoryStore.objects[loc] = b"[1,2,4]"
    with pytest.raises(XComIntegrityError, match="corrupted"):
        MemCustomerKey.deserialize_value(Result(ref))


@pytest.mark.usefixtures("customer_key")
def test_keyed_digest_without_the_key_says_what_to_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = push(MemCustomerKey, [1, 2, 3])
    monkeypatch.delenv("AIRFLOW__XCOM_STORAGE__ENCRYPTION")
    MemCustomerKey.reset()
    with pytest.raises(XComIntegrityError, match="encryption_key"):
        MemCustomerKey.deserialize_value(Result(ref))


@pytest.mark.parametrize("backend", [MemJSON, MemCustomerKey])
def test_rows_written_before_keyed_digests_still_read_and_verify(
    backend: type[MemJSON], monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend is MemCustomerKey:
        use_customer_key(monkeypatch)
    ref = push(backend, {"old": "row"})
    ((loc, stored),) = MemoryStore.objects.items()
    old = {k: v for k, v in ref.items() if k != "digest"} | {"sha256": hashlib.sha256(stored).hexdigest()}
    assert backend.deserialize_value(Result(old)) == {"old": "row"}
    MemoryStore.objects[loc] = stored.replace(b"row", b"raw")
    with pytest.raises(XComIntegrityError, match="corrupted"):
        backend.deserialize_value(Result(old))


def test_a_malformed_digest_is_a_malformed_reference() -> None:
    ref = push(MemJSON, [1])
    with pytest.raises(XComReferenceError, match="Malformed"):
        MemJSON.deserialize_value(Result({**ref, "digest": "md5:abc"}))
