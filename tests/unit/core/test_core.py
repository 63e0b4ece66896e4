from __future__ import annotations

import pytest

from modelyard.core import errors
from modelyard.core.clock import FakeClock
from modelyard.core.registry import SchemeRegistry
from modelyard.server._errors import STATUS_BY_ERROR, status_for


def test_every_error_round_trips_by_code() -> None:
    for code, cls in errors.ERRORS_BY_CODE.items():
        rebuilt = errors.error_from_code(code, "msg")
        assert type(rebuilt) is cls
        assert str(rebuilt) == "msg"
    assert type(errors.error_from_code("SOMETHING_NEW", "m")) is errors.ModelyardError


def test_every_client_error_has_a_4xx_status() -> None:
    for cls in errors.ERRORS_BY_CODE.values():
        status = status_for(cls("x"))
        if cls in (errors.ModelyardError, errors.IntegrityError, errors.Unavailable):
            assert status >= 500
        else:
            assert 400 <= status < 500, cls
    assert set(STATUS_BY_ERROR) <= set(errors.ERRORS_BY_CODE.values())


def test_registry_picks_by_scheme_and_names_the_known_ones() -> None:
    registry: SchemeRegistry[str] = SchemeRegistry("thing")
    registry.register("file", lambda uri: f"F:{uri}")
    registry.register("postgresql", lambda uri: f"P:{uri}")
    assert registry.create("file:///x") == "F:file:///x"
    assert registry.create("postgresql+psycopg://h/db").startswith("P:")
    with pytest.raises(errors.InvalidInput, match=r"file://, postgresql://"):
        registry.create("ftp://x")


def test_fake_clock_only_moves_forward() -> None:
    clock = FakeClock(100.0)
    clock.advance(5)
    assert (clock.now(), clock.monotonic()) == (105.0, 5.0)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
