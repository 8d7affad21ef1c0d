"""`make run`, `make demo`, `make objects` and `make doctor` with Airflow's default XCom backend: named in
.env, and with no backend line at all. Airflow starts, both DAGs pass with their values in the
metadata database, the preflight check says it checked nothing, and `make stop` leaves nothing running."""

from __future__ import annotations

from pathlib import Path

import pytest

from localdev.config import REPO
from tests.integration.localrun import processes_mentioning, started

pytestmark = pytest.mark.integration
DEFAULT = "airflow.sdk.bases.xcom.BaseXCom"


def dotenv_with(folder: Path, backend_line: str | None) -> Path:
    """The project's .env with every backend line (active or commented) replaced by ``backend_line``."""
    lines = [line for line in (REPO / ".env").read_text().splitlines() if "AIRFLOW__CORE__XCOM_BACKEND=" not in line]
    path = folder / ".env"
    path.write_text("\n".join([*lines, *([backend_line] if backend_line else [])]) + "\n")
    return path


@pytest.mark.parametrize(
    "backend_line", [f"AIRFLOW__CORE__XCOM_BACKEND={DEFAULT}", None], ids=["default-backend-line", "no-backend-line"]
)
def test_run_and_demo_with_the_default_backend(tmp_path: Path, backend_line: str | None) -> None:
    with started(tmp_path, dotenv_with(tmp_path, backend_line)) as run:
        assert "nothing was checked" in run.up_output, run.up_output
        assert f"XCom backend:     {DEFAULT} (Airflow's default: values in the metadata database)" in run.up_output

        demo = run.localdev("demo")
        assert demo.returncode == 0, demo.stdout + demo.stderr
        log = (run.state / "logs" / "demo-fetch_pokemon_data_dag.log").read_text()
        assert "pikachu has a base xp to height ratio of 28.0" in log
        rows = [line for line in demo.stdout.splitlines() if " B in DB -> inline: " in line]
        # The random number, the Pokémon dict and the Pokémon DataFrame, each held in the database.
        assert {line.split(":")[0].strip() for line in rows} == {
            "simple_xcom_dag.pick_a_random_number[-1] return_value",
            "fetch_pokemon_data_dag.extract_data[-1] return_value",
            "fetch_pokemon_data_dag.calculate_xp_per_height[-1] return_value",
        }, demo.stdout
        assert "{'__classname__': 'pandas.DataFrame'" in demo.stdout  # serde's own form of the frame
        assert "there is no bucket to list" in demo.stdout

        if backend_line is not None:  # the same commands with no line: covered by up's own doctor step
            objects = run.localdev("objects")
            assert objects.returncode == 0 and "there is no bucket to list" in objects.stdout, objects.stdout
            doctor = run.localdev("doctor", "--strict")
            assert doctor.returncode == 1 and "nothing was checked" in doctor.stdout, doctor.stdout + doctor.stderr

        down = run.localdev("down", timeout=120)
        assert down.returncode == 0 and "Airflow" in down.stdout, down.stdout + down.stderr
        assert processes_mentioning(str(run.state)) == []
