"""Faults injected for real against the local servers: storage stopped, hanging, slow, objects deleted
or corrupted behind Airflow's back, uploads cut mid-way, bad credentials, bad buckets, crafted references.

The backends run in this process (connections from AIRFLOW_CONN_* env vars, as a worker would
resolve them); each cloud has its own servers here so they can be stopped and restarted.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import include.xcom_backends as backends
from include.xcom_backends.backend import ObjectStorageXCom
from include.xcom_backends.errors import (
    XComIntegrityError,
    XComObjectMissingError,
    XComReferenceError,
    XComStorageConfigError,
    XComStorageError,
)
from localdev import config, inprocess, servers
from localdev.inprocess import Result, Row
from localdev.settings_loader import connection_env
from tests.conftest import BucketReader
from tests.integration.netfaults import black_hole, proxy

pytestmark = pytest.mark.integration
CLOUDS = ["s3", "minio", "gcs", "azure"]
BACKEND = {
    "s3": backends.S3JSONXComBackend,
    "minio": backends.MinIOJSONXComBackend,
    "gcs": backends.GCSJSONXComBackend,
    "azure": backends.AzureJSONXComBackend,
}
SERVER_OF = {"s3": "s3", "minio": "s3", "gcs": "gcs", "azure": "azure"}
SECRETS = [config.AZURITE_KEY, "WRONG-SECRET-4711"]


@dataclass
class FaultServers:
    state: Path
    ports: dict[str, int]
    running: dict[str, servers.Server] = field(default_factory=dict)

    def start(self, name: str) -> None:
        make = {
            "s3": lambda: servers.seaweedfs(self.state, self.ports["s3"], config.BUCKET),
            "gcs": lambda: servers.fake_gcs(self.state, self.ports["gcs"]),
            "azure": lambda: servers.azurite(self.state, self.ports["azure"]),
        }[name]
        server = make()
        server.start()
        self.running[name] = server

    def stop(self, name: str) -> None:
        server = self.running.pop(name)
        assert server.pid is not None
        servers.stop_group(server.pid)

    @property
    def endpoints(self) -> dict[str, str]:
        return servers.Stores(self.state, {"pokeapi": 0, **self.ports}).endpoints


@pytest.fixture(scope="module")
def fault_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultServers]:
    from localdev.buckets import create_buckets

    fs = FaultServers(
        tmp_path_factory.mktemp("fault-servers"), {n: servers.free_port() for n in ("s3", "gcs", "azure")}
    )
    try:
        for name in ("s3", "gcs", "azure"):
            fs.start(name)
        create_buckets(fs.endpoints)
        yield fs
    finally:
        for name in list(fs.running):
            fs.stop(name)


@dataclass
class Harness:
    cloud: str
    servers: FaultServers
    monkeypatch: pytest.MonkeyPatch
    prefix: str = field(default_factory=lambda: f"faults/{uuid.uuid4().hex[:8]}")

    def backend(
        self, ports: dict[str, int] | None = None, conn_overrides: dict[str, str] | None = None, **settings: Any
    ) -> type[ObjectStorageXCom]:
        ports = {**self.servers.ports, **(ports or {})}
        for key, value in connection_env(ports, **(conn_overrides or {})).items():
            self.monkeypatch.setenv(key, value)
        self.monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__PREFIX", self.prefix)
        # This deployment's id, as the metadata database would hold it (no database in this process).
        self.monkeypatch.setenv("AIRFLOW_VAR_XCOM_STORAGE_DEPLOYMENT_ID", DEPLOYMENT)
        for name in ("THRESHOLD_BYTES", "TIMEOUT_SECONDS", "MAX_ATTEMPTS", "BUCKET"):
            self.monkeypatch.delenv(f"AIRFLOW__XCOM_STORAGE__{name}", raising=False)
        settings = {"timeout_seconds": 3, "max_attempts": 2, **settings}
        for name, value in settings.items():
            self.monkeypatch.setenv(f"AIRFLOW__XCOM_STORAGE__{name.upper()}", str(value))
        ObjectStorageXCom.reset()
        return BACKEND[self.cloud]

    @property
    def reader(self) -> BucketReader:
        return BucketReader(self.servers)

    def objects(self) -> dict[str, int]:
        return self.reader.list(self.cloud, self.prefix + "/")


DEPLOYMENT = "faults-tests"
IDS: dict[str, Any] = {
    "key": "return_value",
    "task_id": "t",
    "dag_id": "faults",
    "run_id": "manual__1",
    "map_index": -1,
}


def push(backend: type[ObjectStorageXCom], value: Any, task_id: str = "t", **ids: Any) -> dict[str, Any]:
    return inprocess.push(backend, value, {**IDS, "task_id": task_id, **ids})


def row(task_id: str = "t", **ids: Any) -> Any:
    """The identity of the row ``push(..., task_id, **ids)`` writes."""
    from include.xcom_backends.keys import XComRow

    return XComRow.of(**{**IDS, "task_id": task_id, **ids})


pull = inprocess.pull


def assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@pytest.fixture(params=CLOUDS)
def harness(request: pytest.FixtureRequest, fault_servers: FaultServers, monkeypatch: pytest.MonkeyPatch) -> Harness:
    return Harness(request.param, fault_servers, monkeypatch)


@pytest.fixture(autouse=True)
def _reset_backends() -> Iterator[None]:
    yield
    ObjectStorageXCom.reset()


def test_push_while_storage_down_fails_then_retry_succeeds(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    backend = harness.backend()
    server = SERVER_OF[harness.cloud]
    harness.servers.stop(server)
    try:
        started = time.monotonic()
        with pytest.raises(XComStorageError) as err:
            push(backend, {"x": 1})
        elapsed = time.monotonic() - started
        message = str(err.value)
        assert "Could not store XCom 'return_value'" in message
        assert f":{harness.servers.ports[server]}" in message  # the endpoint
        assert "bucket 'airflow-xcom'" in message and f"key '{harness.prefix}/faults/manual__1/t/-1/" in message
        assert elapsed < 60, f"took {elapsed:.0f}s"
        assert_no_secrets(message + caplog.text)
    finally:
        harness.servers.start(server)
    ref = push(backend, {"x": 1})  # the task's retry, once storage is back
    assert pull(backend, ref) == {"x": 1}


def test_pull_while_storage_down_names_the_uri(harness: Harness) -> None:
    backend = harness.backend()
    ref = push(backend, [1, 2, 3])
    server = SERVER_OF[harness.cloud]
    harness.servers.stop(server)
    try:
        with pytest.raises(XComStorageError, match=f"Could not read XCom object {ref['uri']}"):
            pull(backend, ref)
    finally:
        harness.servers.start(server)
    assert pull(backend, ref) == [1, 2, 3]


def test_object_deleted_behind_airflows_back(harness: Harness) -> None:
    backend = harness.backend()
    ref = push(backend, "value")
    (key,) = harness.objects()
    BACKEND[harness.cloud].runtime().store.delete([key])
    assert harness.objects() == {}
    with pytest.raises(XComObjectMissingError, match=f"XCom object {ref['uri']} does not exist"):
        pull(backend, ref)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupted_or_truncated_object_is_caught(harness: Harness, damage: str) -> None:
    backend = harness.backend()
    ref = push(backend, {"numbers": list(range(100))})
    (key,) = harness.objects()
    data = harness.reader.read(harness.cloud, key)
    bad = data.replace(b"42", b"24") if damage == "flip" else data[: len(data) // 2]
    BACKEND[harness.cloud].runtime().store.put(key, bad)
    with pytest.raises(XComIntegrityError, match=f"XCom object {ref['uri']} is corrupted"):
        pull(backend, ref)


def _hang_overrides(cloud: str, port: int, ports: dict[str, int]) -> dict[str, int]:
    return {SERVER_OF[cloud]: port}


def test_hanging_storage_times_out(harness: Harness) -> None:
    with black_hole() as port:
        backend = harness.backend(ports={SERVER_OF[harness.cloud]: port}, timeout_seconds=1, max_attempts=2)
        started = time.monotonic()
        with pytest.raises(XComStorageError, match=f"127.0.0.1:{port}"):
            push(backend, {"x": 1})
        elapsed = time.monotonic() - started
    assert elapsed < 30, f"a hanging store held the task for {elapsed:.0f}s"


def test_slow_storage_within_timeout_succeeds(harness: Harness) -> None:
    server = SERVER_OF[harness.cloud]
    with proxy(harness.servers.ports[server], delay=0.5) as port:
        backend = harness.backend(ports={server: port}, timeout_seconds=10)
        ref = push(backend, {"slow": True})
        assert pull(backend, ref) == {"slow": True}


def test_upload_cut_midway_leaves_no_reference_and_no_object(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from include.xcom_backends.stores import AzureBlobStore, MinIOStore, S3Store, gcs

    # Smaller multipart/chunk sizes, so a 12 MB value exercises the multi-request upload paths.
    for store in (S3Store, MinIOStore, AzureBlobStore):
        monkeypatch.setattr(store, "multipart_threshold", 8 * 1024 * 1024)
        monkeypatch.setattr(store, "part_size", 5 * 1024 * 1024)
    monkeypatch.setattr(gcs, "CHUNK_SIZE", 4 * 1024 * 1024)
    server = SERVER_OF[harness.cloud]
    value = "x" * (12 * 1024 * 1024)
    with proxy(harness.servers.ports[server], cut_after=6 * 1024 * 1024) as port:
        backend = harness.backend(ports={server: port}, timeout_seconds=10, max_attempts=2)
        with pytest.raises(XComStorageError, match="Could not store XCom"):
            push(backend, value)
    assert harness.objects() == {}, "a failed upload left an object a reader could take for the value"
    if harness.cloud in ("s3", "minio"):
        uploads = harness.reader._s3().list_multipart_uploads(Bucket="airflow-xcom", Prefix=harness.prefix)
        assert uploads.get("Uploads", []) == []  # obstore aborted the upload it could not finish
    # Through the real endpoint the same large value goes and comes back whole.
    backend = harness.backend()
    ref = push(backend, value)
    assert pull(backend, ref) == value


def test_wrong_credentials_one_clear_error(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    if harness.cloud == "gcs":
        pytest.skip("fake-gcs-server does not check credentials (anonymous emulator)")
    conn_id = BACKEND[harness.cloud].default_conn_id
    env = connection_env(harness.servers.ports)
    doc = json.loads(env[f"AIRFLOW_CONN_{conn_id.upper()}"])
    if harness.cloud == "azure":
        doc["extra"]["connection_string"] = doc["extra"]["connection_string"].replace(
            config.AZURITE_KEY,
            "V1JPTkctU0VDUkVULTQ3MTE=",  # base64("WRONG-SECRET-4711")
        )
    else:
        doc["password"] = "WRONG-SECRET-4711"
    backend = harness.backend(conn_overrides={f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(doc)})
    with pytest.raises(XComStorageError) as err:
        push(backend, {"x": 1})
    assert f"connection '{conn_id}'" in str(err.value)
    assert_no_secrets(str(err.value) + caplog.text)
    assert "V1JPTkctU0VDUkVULTQ3MTE=" not in str(err.value) + caplog.text


def test_missing_bucket_one_clear_error(harness: Harness) -> None:
    backend = harness.backend(bucket="no-such-bucket")
    with pytest.raises(XComStorageError, match="bucket 'no-such-bucket'"):
        push(backend, {"x": 1})


def test_missing_connection_one_clear_error(harness: Harness) -> None:
    backend = harness.backend(conn_id="not_defined_anywhere")
    with pytest.raises(XComStorageConfigError, match="'not_defined_anywhere' could not be loaded"):
        push(backend, {"x": 1})


def test_crafted_reference_cannot_read_or_delete_other_objects(harness: Harness) -> None:
    backend = harness.backend()
    victim = f"outside-{uuid.uuid4().hex[:8]}/secret.json"
    BACKEND[harness.cloud].runtime().store.put(victim, b'"secret"')
    ref = push(backend, "mine")
    scheme = ref["uri"].split("://")[0]
    for uri in (
        f"{scheme}://airflow-xcom/{victim}",
        f"{scheme}://airflow-xcom/{harness.prefix}/../{victim}",
        f"{scheme}://other-bucket/{harness.prefix}/x.json",
    ):
        crafted = {**ref, "uri": uri}
        with pytest.raises(XComReferenceError, match="outside the configured location"):
            pull(backend, crafted)
        with pytest.raises(XComReferenceError):
            backend.purge(Result(crafted))
    assert harness.reader.read(harness.cloud, victim) == b'"secret"'


OTHER_ROWS: dict[str, dict[str, Any]] = {
    "dag": {"dag_id": "other_dag"},
    "run": {"run_id": "manual__2"},
    "task": {"task_id": "t2"},
    "map index": {"map_index": 3},
    "key": {"key": "other_key"},
}


def test_reference_of_another_row_is_refused_for_preview_and_purge(harness: Harness) -> None:
    """The row check on each real store: a reference copied into another row is neither previewed
    nor purged, nor pulled, and every object is intact afterwards."""
    from include.xcom_backends.keys import XComRow
    from include.xcom_backends.ui.preview import preview_xcom

    backend = harness.backend()
    mine = XComRow.of(**IDS)
    push(backend, "mine")
    victims = {name: push(backend, {"secret": name}, **other) for name, other in OTHER_ROWS.items()}
    before = harness.objects()
    assert len(before) == 6
    for name, victim in victims.items():
        p = preview_xcom(backend, mine, victim)
        assert p.error and "not under that row's own location" in p.error and p.text is None, name
        with pytest.raises(XComReferenceError, match="not under that row's own location"):
            backend.purge(Row(victim, **IDS))
        rightful = XComRow.of(**{**IDS, **OTHER_ROWS[name]})
        assert preview_xcom(backend, rightful, victim).text == f'{{\n  "secret": "{name}"\n}}'
    assert harness.objects() == before
    for name, victim in victims.items():
        assert json.loads(harness.reader.read(harness.cloud, victim["uri"].split("/", 3)[3])) == {"secret": name}


def test_ids_with_every_allowed_character(harness: Harness) -> None:
    backend = harness.backend()
    cases = [
        {"dag_id": "dåg.with.dots", "task_id": "grüße-task_1", "run_id": "scheduled__2024-01-01T00:00:00+00:00"},
        {"dag_id": "dåg.with.dots", "task_id": "grüße-task_1", "run_id": "scheduled__2024-01-01T00:00:00 00:00"},
        {"dag_id": "d" * 250, "task_id": "日本語" * 80, "run_id": "manual__" + "x" * 240, "key": "a/../../b c"},
        {"dag_id": "..", "task_id": ".", "run_id": "%2E%2E", "key": "/leading"},
    ]
    refs = [push(backend, i, **ids) for i, ids in enumerate(cases)]
    keys = [r["uri"].split("/", 3)[3] for r in refs]
    assert len(set(keys)) == len(cases)
    assert all(k.startswith(harness.prefix + "/") and "/../" not in k and len(k.encode()) <= 1024 for k in keys)
    assert [pull(backend, r) for r in refs] == list(range(len(cases)))
    assert len(harness.objects()) == len(cases)


def test_dag_push_to_unreachable_storage_writes_no_reference(airflow_session: Any) -> None:
    """Through a real task: the push fails loudly and the metadata database gets no XCom row."""
    dead = servers.free_port()
    conn = json.loads(connection_env({"s3": dead, "gcs": 1, "azure": 1})["AIRFLOW_CONN_S3_XCOM_BACKEND_CONN"])
    proc = airflow_session.run_dag(
        "simple_xcom_dag",
        backend="include.xcom_backends.S3JSONXComBackend",
        extra_env={"AIRFLOW_CONN_S3_XCOM_BACKEND_CONN": json.dumps(conn), "AIRFLOW__XCOM_STORAGE__MAX_ATTEMPTS": "1"},
    )
    out = proc.stdout + proc.stderr
    assert "Could not store XCom 'return_value' of task 'pick_a_random_number'" in out
    assert f"endpoint http://127.0.0.1:{dead}" in out and "bucket 'airflow-xcom'" in out
    assert "The random number is" not in out
    assert airflow_session.xcom_rows("simple_xcom_dag") == []


# --- the preflight check (python -m include.xcom_backends doctor) -------------------------------


def test_doctor_passes_and_leaves_no_probe(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    from include.xcom_backends.ops.cli import main

    backend = harness.backend()
    assert main(["doctor", "--backend", f"include.xcom_backends.{backend.__name__}"]) == 0
    out = capsys.readouterr().out
    assert out.count("[PASS]") == 8 and "All checks passed." in out
    assert list(harness.objects()) == [f"{harness.prefix}/_xcom_storage_owner.json"]  # the claim, no probe


@pytest.mark.parametrize(
    ("setting", "failed_step"),
    [
        ({"bucket": "no-such-bucket"}, "bucket"),
        ({"conn_id": "nope"}, "connection"),
        ({"max_attempts": "zero"}, "settings"),
    ],
)
def test_doctor_names_the_failing_step(harness: Harness, setting: dict[str, Any], failed_step: str) -> None:
    from include.xcom_backends.ops.doctor import run_checks

    steps = run_checks(harness.backend(**setting), deployment=DEPLOYMENT)
    assert [s.name for s in steps if not s.ok] == [failed_step]
    assert steps[-1].name == failed_step and "->" in steps[-1].detail  # what to do


def test_doctor_fails_when_storage_unreachable(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    from include.xcom_backends.ops.cli import main

    dead = servers.free_port()
    backend = harness.backend(ports={SERVER_OF[harness.cloud]: dead}, timeout_seconds=1, max_attempts=1)
    assert main(["doctor", "--backend", f"include.xcom_backends.{backend.__name__}"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] bucket" in out and "Preflight check FAILED." in out


def test_gc_on_every_store(harness: Harness) -> None:
    """gc's listing, age limit and delete per store (the DB side is tested end to end in test_gc.py)."""
    from datetime import timedelta

    from include.xcom_backends.ops.gc import References, collect
    from include.xcom_backends.ops.ownership import claim

    backend = harness.backend()
    claim(backend.runtime(), DEPLOYMENT)
    kept, orphan = push(backend, "kept", task_id="a"), push(backend, "orphan", task_id="b")
    refs = References({kept["uri"]})
    young = collect(backend, older_than=timedelta(hours=1), delete=True, references=refs, deployment=DEPLOYMENT)
    assert (young.scanned, young.referenced, young.too_young, young.deleted) == (3, 1, 1, 0)
    assert young.not_ours == 1  # the ownership marker
    report = collect(backend, older_than=timedelta(0), delete=True, references=refs, deployment=DEPLOYMENT)
    assert [o.size for o in report.orphans] == [orphan["size"]] and report.deleted == 1
    assert pull(backend, kept) == "kept"
    with pytest.raises(XComObjectMissingError):
        pull(backend, orphan)


# --- the UI plugin's preview (the browser side is in test_local_run.py) --------------------------


def test_preview_on_every_store(harness: Harness) -> None:
    """Ranged reads on each store: a 300k-row frame is previewed from a fraction of its object."""
    import numpy as np
    import pandas as pd

    from include.xcom_backends.ui.preview import preview_xcom

    harness.backend()
    pandas_backend = getattr(backends, BACKEND[harness.cloud].__name__.replace("JSON", "Pandas"))
    n = 300_000
    frame = pd.DataFrame({"i": np.arange(n), "f": np.linspace(0, 1, n), "s": [f"row {i}" for i in range(n)]})
    ref = push(pandas_backend, frame)
    p = preview_xcom(pandas_backend, row(), ref)
    assert p.error is None and p.uri == ref["uri"] and p.total_rows == n
    assert p.rows[2] == ["2", "2", str(frame.f[2]), "row 2"]
    assert 0 < p.bytes_read < ref["size"] / 2, (p.bytes_read, ref["size"])

    j = preview_xcom(pandas_backend, row(task_id="j"), push(pandas_backend, {"pokemon": ["pikachu"]}, task_id="j"))
    assert j.error is None and j.text == '{\n  "pokemon": [\n    "pikachu"\n  ]\n}'
