"""The benchmark's target check (the benchmark itself is a program: make bench)."""

from __future__ import annotations

from typing import Any

from bench.report import tables, targets


def row(approach: str, workload: str, total: float, **kw: Any) -> dict[str, Any]:
    base = {
        "approach": approach,
        "workload": workload,
        "rows": 1_000_000,
        "value_bytes": 100,
        "identical": True,
        "push_s": total / 2,
        "pull_s": total / 2,
        "total_s": total,
        "first_push_s": 0.2,
        "first_pull_s": 0.1,
        "first_s": 0.3,
        "db_bytes": 300,
        "object_bytes": 50,
        "objects_per_push": 1,
        "push_peak_bytes": 100,
        "pull_peak_bytes": 100,
    }
    return {**base, **kw}


def test_targets_name_each_ratio_and_flag_misses() -> None:
    results = [row("floor", "frame_1m", 1.0), row("ours", "frame_1m", 1.1), row("common_io", "frame_1m", 3.0)]
    text = targets(results)
    assert "| frame_1m: push+pull within 1.15x of the floor | 1.10x | yes |" in text
    assert "| frame_1m: at least 3x faster than common.io | 2.7x | **no** |" in text
    assert "| frame_1m: push+pull against the boto3 floor, aiming below 1.00x | 1.10x | **no** |" in text
    assert "| frame_3m: push+pull against the boto3 floor, aiming below 1.00x | 0.90x | yes |" in targets(
        [row("floor", "frame_3m", 1.0), row("ours", "frame_3m", 0.9)]
    )
    results[1]["db_bytes"] = 2048
    assert "| metadata DB bytes per offloaded XCom under 1 KB | max 2048 B | **no** |" in targets(results)


def test_tables_sort_by_time_and_show_ratios() -> None:
    text = tables([row("ours", "frame_1m", 2.0), row("floor", "frame_1m", 1.0)])
    lines = [line for line in text.splitlines() if line.startswith("| floor") or line.startswith("| ours")]
    assert lines[0].startswith("| floor") and "| 2.00 |" in lines[1]


def test_the_polars_frame_is_held_to_its_own_floor() -> None:
    text = targets([row("floor", "polars_1m", 1.0), row("ours", "polars_1m", 1.2)])
    assert "| polars_1m: push+pull within 1.15x of the floor | 1.20x | **no** |" in text
