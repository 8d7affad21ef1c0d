"""ruff lint and format, the mypy type check and the documentation site's strict build are part of the test
command, so CI enforces them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from localdev.config import REPO

RUFF = Path(sys.executable).parent / "ruff"


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff(args: list[str]) -> None:
    proc = subprocess.run([str(RUFF), *args], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy() -> None:
    """Every module typed and checked (settings in pyproject.toml: the Protocols and the stores' contract)."""
    proc = subprocess.run([str(RUFF.parent / "mypy")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_docs_site_builds_without_warnings(tmp_path: Path) -> None:
    """`mkdocs build --strict` (as `make lint`): a broken link or anchor, a missing image or page, or a page
    left out of the nav in mkdocs.yml is a warning, and a warning fails the build."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [str(RUFF.parent / "mkdocs"), "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "WARNING" not in output, output
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "performance" / "index.html").is_file()
