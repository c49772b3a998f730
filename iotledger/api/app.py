"""The Litestar application factory: the only place the HTTP side is wired."""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide
from litestar.types import ASGIApp

from iotledger.api.auth import provide_caller, provide_principal
from iotledger.api.bodies import JsonBodyRequest
from iotledger.api.errors import EXCEPTION_HANDLERS
from iotledger.api.intake import IntakeLane
from iotledger.api.lambda_iot.bulk import LambdaBulkController
from iotledger.api.lambda_iot.components import LambdaActorsController, LambdaSensorsController
from iotledger.api.lambda_iot.credentials import LambdaCredentialsController
from iotledger.api.lambda_iot.devices import LambdaDevicesController
from iotledger.api.lambda_iot.mqtt_actions import MqttActionsController
from iotledger.api.lambda_iot.readings import LambdaReadingsController
from iotledger.api.lambda_iot.system import SystemController
from iotledger.api.lambda_iot.users import LambdaUsersController
from iotledger.api.observer import HttpObserver
from iotledger.api.openapi import describe
from iotledger.api.operations import OperationsController
from iotledger.api.schema_pages import openapi_config, schema_routes
from iotledger.api.telemetry.auth import TelemetryAuthController
from iotledger.api.telemetry.bulk import TelemetryBulkController
from iotledger.api.telemetry.commands import TelemetryCommandsController
from iotledger.api.telemetry.devices import TelemetryDevicesController
from iotledger.api.telemetry.identity import (
    TelemetryDeviceIdentityController,
    TelemetryGatewaysController,
)
from iotledger.api.telemetry.stream import StreamController
from iotledger.api.telemetry.telemetry import TelemetryController
from iotledger.bootstrap import Services


def create_app(services: Services) -> ASGIApp:
    """What `serve` runs: the observer (metrics, access log), then the intake lane in
    front of the Litestar application."""
    lane = IntakeLane(create_litestar(services), services)
    return HttpObserver(lane, access_log=services.settings.access_log)


def create_litestar(services: Services) -> Litestar:
    def provide_services() -> Services:
        return services

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
            *schema_routes(services.settings),
        ],
        dependencies={
            "services": Provide(provide_services, sync_to_thread=False),
            "principal": Provide(provide_principal),
            "caller": Provide(provide_caller),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        request_class=JsonBodyRequest,
        request_max_body_size=services.settings.max_body_bytes,
        logging_config=None,  # the process's logging is set once (`adapters.observability.logs`)
        openapi_config=openapi_config(),
    )
    describe(app)
    return app
