"""The composition root: one App, built once and frozen; each handler given the parts it
declares, of the type it declares."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import pytest
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

from iotledger.adapters.postgres.views.catalog import PROJECTIONS
from iotledger.api.app import create_litestar
from iotledger.bootstrap import App

WHO_IS_CALLING = {"principal", "caller"}
"""Made per request, from its headers: not parts of the process."""


def test_the_app_is_built_once_and_nothing_is_set_on_it_later(services: App) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        services.recording = services.recording  # type: ignore[misc]
    assert "publisher" not in {field.name for field in dataclasses.fields(services)}


def test_the_views_are_the_catalogs_each_named_as_its_projection(services: App) -> None:
    views = services.views.by_name()
    assert list(views) == list(PROJECTIONS)
    assert {name: type(view) for name, view in views.items()} == {
        name: view for name, (_, view) in PROJECTIONS.items()
    }
    assert all(view.name == name for name, view in views.items())


def handlers(services: App) -> list[HTTPRouteHandler]:
    app = create_litestar(services)
    return [h for route in app.routes if isinstance(route, HTTPRoute) for h in route.route_handlers]


def test_every_part_a_handler_declares_is_given_and_of_the_type_it_declares(
    services: App,
) -> None:
    checked = set()
    for handler in handlers(services):
        provided = handler.resolve_dependencies()
        for name, field in handler.parsed_fn_signature.parameters.items():
            if name not in provided or name in WHO_IS_CALLING:
                continue
            part = provided[name].dependency()
            given: Any = msgspec.defstruct("Given", [(name, field.annotation)])
            assert msgspec.convert({name: part}, given), f"{handler}: {name}"
            checked.add(name)
    assert {"ledger", "watch", "publisher", "intake", "accounts", "identities"} <= checked
