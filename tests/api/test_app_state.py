"""``app.state`` (app/api/read_front.py ``AppState``): its values are plain attributes, read without
Starlette's ``__getattr__`` (which first fails the ordinary look-up), and set and deleted as with
Starlette's ``State``."""

from __future__ import annotations

import pytest
from starlette.datastructures import State

from app.api.app import create_app
from app.api.read_front import AppState
from app.settings import Settings


def test_state_values_are_set_and_deleted_as_with_starlettes_state(settings: Settings) -> None:
    app = create_app(settings)
    assert isinstance(app.state, AppState)
    assert app.state.settings is settings
    app.state.extra = 1
    assert app.state._state["extra"] == 1
    app.state.extra = 2
    assert app.state.extra == 2 and app.state._state["extra"] == 2
    del app.state.extra
    assert "extra" not in app.state._state
    with pytest.raises(AttributeError):
        _ = app.state.extra


def test_reading_a_value_does_not_go_through_getattr(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(settings)

    def refuse(self: State, key: str) -> None:
        raise AssertionError(f"app.state.{key} read through State.__getattr__")

    monkeypatch.setattr(State, "__getattr__", refuse)
    assert app.state.settings is settings
    assert app.state.capability_cache == {}
