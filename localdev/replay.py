"""The result of one replayed Astro CLI step, shared by the replays (``make astro-check``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    step: str  # e.g. "image build (pip)", "astro dev pytest", "astro dev parse", "compose config"
    did: str  # what was run, in one line
    ok: bool
    result: str  # one line: what came out (counts, times, the first error)
    seconds: float
