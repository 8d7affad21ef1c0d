"""The fixed-cost table's arithmetic and formatting (the measurement itself is a program: python -m bench.fixedcost)."""

from __future__ import annotations

from typing import Any

from bench.fixedcost import import_profile, imports_table, summarize, table
from bench.fixedcost_worker import MARK


def run(total: float, **kw: Any) -> dict[str, Any]:
    return {
        "total_s": total,
        "import_s": total / 4,
        "push_s": total / 2,
        "pull_s": total / 4,
        "modules": 40,
        "db_bytes": 290,
        **kw,
    }


def test_each_store_is_held_to_the_database_backend_within_a_tenth_of_a_second() -> None:
    rows = summarize(
        {
            "db": [run(0.001), run(0.003), run(0.002)],
            "s3": [run(0.050), run(0.060), run(0.040)],
            "gcs": [run(0.150), run(0.104), run(0.300)],
        }
    )
    by = {r["approach"]: r for r in rows}
    assert by["db"]["first_s"] == 0.002 and "within" not in by["db"]
    assert by["s3"]["first_s"] == 0.050 and by["s3"]["within"] and round(by["s3"]["vs_db_s"], 3) == 0.048
    assert (by["gcs"]["min_s"], by["gcs"]["max_s"]) == (0.104, 0.300)
    assert round(by["gcs"]["vs_db_s"], 3) == 0.148 and not by["gcs"]["within"]
    text = table(rows)
    assert "| S3JSONXComBackend | SeaweedFS | 0.050 |" in text and "| +0.048 | 25.00 | yes |" in text
    assert "| +0.148 | 75.00 | **no** |" in text
    assert "| Airflow default (database) | – | 0.002 |" in text and text.count("\n") == 5


def test_a_failed_store_is_a_row_of_its_own_with_every_column() -> None:
    text = table(summarize({"db": [run(0.001)], "azure": []}, {"azure": "worker azure failed: a|b"}))
    line = next(line for line in text.splitlines() if line.startswith("| AzureJSONXComBackend"))
    header = text.splitlines()[0]
    assert "**failed**: worker azure failed: a\\|b" in line
    assert line.replace("\\|", "").count("|") == header.count("|") and line.endswith("**no** |")


def test_the_import_profile_counts_only_what_came_after_the_clock_started() -> None:
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:      9000 |       9000 | requests",  # before the clock: airflow.sdk's share
            MARK,
            "import time:      1500 |       1500 |     google.auth.crypt",
            "import time:       500 |       2000 |   google.cloud.storage.batch",
            "import time:       250 |       2250 | google.cloud.storage",
            "import time:      3000 |       3000 | grpc._cython.cygrpc",
            "2026-01-01T00:00:00Z [info] XCom 'return_value' stored at gs://...",
        ]
    )
    profile = import_profile(stderr)
    assert profile == {"grpc": 0.003, "google.auth": 0.0015, "google.cloud.storage": 0.00075}
    assert "| GCSJSONXComBackend | 5.2 | grpc 3.0, google.auth 1.5, google.cloud.storage 0.8 |" in imports_table(
        {"gcs": profile}
    )
