"""Fixtures shared by the unit tests."""

from tests.unit.memory import mem_backend  # noqa: F401  (fixture)
