"""Fixtures of the unit tests: the domain services wired on the memory adapters."""

from __future__ import annotations

import pytest

from tests.support.fakes import Domain, build_domain


@pytest.fixture
def domain() -> Domain:
    """Fresh services, stores, clock and recording publisher for one test."""
    return build_domain()
