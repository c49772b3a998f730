"""The Litestar application factory: the only place the HTTP side is wired."""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide
from litestar.types import ASGIApp

from iotledger.adapters.mqtt.auth import Enforcer, ReadModelEnforcer
from iotledger.adapters.mqtt.link import NoBroker, Publisher
from iotledger.api.auth import provide_caller, provide_principal
from iotledger.api.bodies import JsonBodyRequest
from iotledger.api.deps import Parts, by_name, constant
from iotledger.api.errors import EXCEPTION_HANDLERS
from iotledger.api.identity import Identities
from iotledger.api.intake import IntakeLane
from iotledger.api.lambda_iot.bulk import LambdaBulkController
from iotledger.api.lambda_iot.components import LambdaActorsController, LambdaSensorsController
from iotledger.api.lambda_iot.credentials import LambdaCredentialsController
from iotledger.api.lambda_iot.devices import LambdaDevicesController
from iotledger.api.lambda_iot.mqtt_actions import Broadcast, MqttActionsController
from iotledger.api.lambda_iot.readings import LambdaReadingsController
from iotledger.api.lambda_iot.system import SystemController
from iotledger.api.lambda_iot.users import LambdaUsersController
from iotledger.api.litestar_private import resolve_dependencies_in_turn
from iotledger.api.observer import HttpObserver
from iotledger.api.openapi import describe
from iotledger.api.operations import OperationsController, Readiness
from iotledger.api.readings import Readings
from iotledger.api.schema_pages import openapi_config, schema_routes
from iotledger.api.signin import Accounts
from iotledger.api.telemetry.auth import SignedIn, TelemetryAuthController
from iotledger.api.telemetry.bulk import TelemetryBulkController
from iotledger.api.telemetry.commands import TelemetryCommandsController
from iotledger.api.telemetry.devices import TelemetryDevicesController
from iotledger.api.telemetry.identity import (
    TelemetryDeviceIdentityController,
    TelemetryGatewaysController,
)
from iotledger.api.telemetry.stream import Live, StreamController
from iotledger.api.telemetry.telemetry import TelemetryController, TelemetryIntake


def create_app(
    parts: Parts,
    publisher: Publisher | None = None,
    enforcer: Enforcer | None = None,
) -> ASGIApp:
    """What `serve` runs: the observer (metrics, access log), then the intake lane in
    front of the Litestar application. `publisher` is the broker link of the process
    (none: nothing can be published), `enforcer` tells the broker of credentials (none:
    the broker asks the read model itself, or nobody enforces)."""
    intake = TelemetryIntake.of(parts)
    lane = IntakeLane(create_litestar(parts, publisher, enforcer, intake), parts, intake)
    return HttpObserver(lane, access_log=parts.settings.access_log)


def create_litestar(
    parts: Parts,
    publisher: Publisher | None = None,
    enforcer: Enforcer | None = None,
    intake: TelemetryIntake | None = None,
) -> Litestar:
    """The Litestar application alone; `intake` is shared with a lane in front of it."""
    resolve_dependencies_in_turn()
    publisher, enforcer = publisher or NoBroker(), enforcer or ReadModelEnforcer()
    intake = intake or TelemetryIntake.of(parts)
    given = {**by_name(parts, publisher, enforcer), **shared(parts, publisher, enforcer, intake)}
    app = Litestar(
        route_handlers=[
            SystemController,
            OperationsController,
            LambdaUsersController,
            TelemetryAuthController,
            LambdaDevicesController,
            LambdaSensorsController,
            LambdaActorsController,
            TelemetryDevicesController,
            MqttActionsController,
            TelemetryCommandsController,
            TelemetryController,
            LambdaReadingsController,
            LambdaCredentialsController,
            TelemetryDeviceIdentityController,
            TelemetryGatewaysController,
            StreamController,
            TelemetryBulkController,
            LambdaBulkController,
            *schema_routes(parts.settings),
        ],
        dependencies={
            **{name: constant(part) for name, part in given.items()},
            "principal": Provide(provide_principal),
            "caller": Provide(provide_caller),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        request_class=JsonBodyRequest,
        request_max_body_size=parts.settings.max_body_bytes,
        logging_config=None,  # the process's logging is set once (`adapters.observability.logs`)
        openapi_config=openapi_config(),
    )
    describe(app)
    return app


def shared(
    parts: Parts, publisher: Publisher, enforcer: Enforcer, intake: TelemetryIntake
) -> dict[str, object]:
    """What a kind of request takes when it is several parts (for the requests of both
    dialects alike, or of the handler and the intake lane), made once: a handler
    declares it by its name, as it declares a part."""
    return {
        "readings": Readings.of(parts),
        "intake": intake,
        "accounts": Accounts.of(parts),
        "signed_in": SignedIn(parts.tokens, parts.settings),
        "identities": Identities(parts.ledger, parts.watch, enforcer),
        "broadcast": Broadcast(parts.ledger, parts.watch, publisher, parts.topics),
        "live": Live.of(parts),
        "readiness": Readiness(
            parts.database_probe, parts.projections, publisher, parts.settings.ready_max_lag
        ),
    }
