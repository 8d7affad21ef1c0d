"""The replay of the Astro image (localdev/astro_image.py), `astro dev parse`'s integrity test
(.astro/test_dag_integrity_default.py), and the conftest's skips for what the image lacks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from localdev import astro_image
from localdev.config import REPO
from tests import conftest


@pytest.mark.parametrize(
    ("path", "left_out"),
    [
        (".venv/bin/python", True),
        (".local/astro-image/venv", True),
        ("localdev/node/node_modules/.bin/azurite-blob", True),
        (".env", True),
        ("airflow_settings.yaml", True),
        ("logs/scheduler.log", True),
        (".git/HEAD", True),
        ("astro", True),
        ("localdev/node/package.json", False),
        ("localdev/astro_image.py", False),
        (".astro/test_dag_integrity_default.py", False),
        (".astro/dag_integrity_exceptions.txt", False),
        ("dags/simple_xcom_dag.py", False),
        ("requirements.txt", False),
        ("tests/conftest.py", False),
    ],
)
def test_build_context_leaves_out_what_dockerignore_says(path: str, left_out: bool) -> None:
    assert astro_image.ignored(path, astro_image.dockerignore_patterns()) is left_out


def test_dockerignore_globs() -> None:
    rules = [
        (not line.startswith("!"), re.compile(astro_image._glob_regex(line.lstrip("!"))))
        for line in ("**/__pycache__", "*.md", "docs", "!docs/keep.md")
    ]
    assert astro_image.ignored("include/__pycache__/x.pyc", rules)
    assert astro_image.ignored("__pycache__/x.pyc", rules)
    assert astro_image.ignored("README.md", rules)
    assert not astro_image.ignored("docs/keep.md", rules)
    assert astro_image.ignored("docs/other.md", rules)
    assert not astro_image.ignored("include/README.md", rules)


def test_env_file_reads_as_docker_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / ".env"
    path.write_text('# comment\n\nA=1\nB="quoted"\n  C=x=y\nFROM_HOST\nUNSET_NAME\n')
    monkeypatch.setenv("FROM_HOST", "h")
    monkeypatch.delenv("UNSET_NAME", raising=False)
    assert astro_image.env_file(path) == {"A": "1", "B": '"quoted"', "C": "x=y", "FROM_HOST": "h"}


def test_pytest_counts() -> None:
    out = "lots\n=== 3 failed, 650 passed, 90 skipped, 2 errors, 1 warning in 75.88s (0:01:15) ===\n"
    assert astro_image.pytest_counts(out) == {"failed": 3, "passed": 650, "skipped": 90, "errors": 2}
    assert astro_image.pytest_counts("=== 1 error in 0.2s ===") == {"errors": 1}
    assert astro_image.pytest_counts("no summary") == {}


def test_skip_reasons_are_counted() -> None:
    out = "SKIPPED [3] tests/a.py:10: needs x\nSKIPPED [2] tests/b.py: needs x\nSKIPPED [1] tests/c.py:1: other\n"
    assert astro_image._skip_reasons(out) == ["5 x needs x", "1 x other"]


def test_the_image_base_is_runtime_3_3_2() -> None:
    base = dict(req.split("==") for req in astro_image.BASE_REQUIREMENTS)
    assert base["apache-airflow"] == "3.3.2"
    assert not {name for name in base if any(p in name for p in ("amazon", "google", "azure", "http"))}
    assert (REPO / "Dockerfile").read_text().splitlines()[-1] == f"FROM {astro_image.RUNTIME_IMAGE}"


def test_an_image_venv_built_from_the_same_inputs_is_reused_with_its_measured_times(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    record = {
        "digest": astro_image.inputs_digest(astro_image._python_version(astro_image._python())),
        "built": "2026-12-02 16:32 UTC",
        "ok": True,
        "base_seconds": 29.5,
        "requirements_seconds": 104.6,
        "summary": "base 29.5s, pip install -r requirements.txt 104.6s",
    }
    (tmp_path / "venv.build.json").write_text(json.dumps(record))
    step = astro_image.build_image_venv(venv)
    assert step.ok and step.seconds == pytest.approx(134.1)
    assert step.result == "reused; last fresh build: base 29.5s, pip install -r requirements.txt 104.6s"
    assert "since 2026-12-02 16:32 UTC" in step.did
    assert (venv / "bin" / "python").exists()  # not rebuilt


# --- astro dev parse: .astro/test_dag_integrity_default.py --------------------------------------------


def _parse(home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(REPO),
    }
    env.pop("AIRFLOW__CORE__XCOM_BACKEND", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", astro_image.PARSE_TEST],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_parse_fails_on_an_import_error_unless_exempted(tmp_path: Path) -> None:
    (tmp_path / ".astro").mkdir()
    shutil.copy(REPO / astro_image.PARSE_TEST, tmp_path / astro_image.PARSE_TEST)
    shutil.copytree(REPO / "dags", tmp_path / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "dags" / "broken_dag.py").write_text("from airflow.sdk import DAG\nimport not_a_module_here\n")
    (tmp_path / "dags" / "uses_parse_time_settings.py").write_text(
        "import os\n"
        "from airflow.sdk import DAG, BaseHook, Variable\n"
        "BaseHook.get_connection('not_defined')\n"
        "assert Variable.get('not_defined') and os.getenv('NOT_SET_ANYWHERE')\n"
        "dag = DAG(dag_id='parse_time_settings', schedule=None, tags=['t'])\n"
    )

    failed = _parse(tmp_path)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "dags/broken_dag.py failed to import" in failed.stdout
    assert "No module named 'not_a_module_here'" in failed.stdout
    assert "1 failed, 3 passed" in failed.stdout

    (tmp_path / ".astro" / "dag_integrity_exceptions.txt").write_text("# drafts\ndags/broken_dag.py  # WIP\n")
    exempted = _parse(tmp_path)
    assert exempted.returncode == 0, exempted.stdout + exempted.stderr
    assert "4 passed" in exempted.stdout


# --- the conftest's skips: in the image, not under `make test` -------------------------------------------


def test_missing_servers_skip_outside_make_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "missing_local_servers", lambda: ["Azurite"])
    monkeypatch.delenv(conftest.REQUIRE_SERVERS, raising=False)
    with pytest.raises(pytest.skip.Exception, match="`make test` installs; skipped in the image"):
        conftest.need_local_servers()


def test_missing_servers_fail_under_make_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "missing_local_servers", lambda: ["Azurite"])
    monkeypatch.setenv(conftest.REQUIRE_SERVERS, "1")
    with pytest.raises(pytest.fail.Exception, match="XCOM_REQUIRE_SERVERS=1 but not installed: Azurite"):
        conftest.need_local_servers()


def test_a_missing_dev_tool_is_skipped_only_when_the_test_module_imports_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conftest, "DEV_MODULES", {*conftest.DEV_MODULES, "absent_dev_tool"})
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "test_direct.py").write_text("import absent_dev_tool\n")
    (tmp_path / "helper_imports_it.py").write_text("import absent_dev_tool\n")
    (tmp_path / "test_indirect.py").write_text("import helper_imports_it\n")
    for name, expected in (("test_direct", "absent_dev_tool"), ("test_indirect", None)):
        try:
            __import__(name)
        except ModuleNotFoundError as exc:
            assert conftest._missing_dev_module(exc, tmp_path / f"{name}.py") == expected
        else:
            raise AssertionError(f"{name} imported")


@pytest.mark.skipif(
    os.environ.get("XCOM_REQUIRE_SERVERS") != "1", reason="checks `make test` itself (XCOM_REQUIRE_SERVERS=1)"
)
def test_make_test_skips_nothing_for_the_image() -> None:
    """Under `make test` every local server and dev tool is installed: nothing is skipped for the image."""
    assert conftest.missing_local_servers() == []
    for module in sorted(conftest.DEV_MODULES):
        __import__(module)
    for programs in conftest.DEV_PROGRAMS.values():
        for name in programs:
            assert (Path(sys.executable).parent / name).exists(), name


def test_a_host_only_file_is_named_through_wrapping_errors() -> None:
    missing = REPO / "logs" / "not-there.log"  # logs/ is in .dockerignore
    assert conftest.left_out_of_image(FileNotFoundError(2, "No such file", str(missing))) == "logs/not-there.log"
    try:
        try:
            (REPO / "logs" / "not-there.log").read_text()
        except FileNotFoundError as exc:
            raise RuntimeError("Cannot read the settings") from exc
    except RuntimeError as wrapped:
        assert conftest.left_out_of_image(wrapped) == "logs/not-there.log"
    assert conftest.left_out_of_image(FileNotFoundError(2, "No such file", str(REPO / "dags" / "gone.py"))) is None
    assert conftest.left_out_of_image(ValueError("x")) is None
