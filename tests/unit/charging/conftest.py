"""Fixtures of the charging unit tests."""

import pytest
from tests.charging_world import World, make_world


@pytest.fixture
def world() -> World:
    return make_world()
