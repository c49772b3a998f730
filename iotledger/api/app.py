"""The Litestar application factory: the only place the HTTP side is wired."""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp

from iotledger.api.auth import provide_principal
from iotledger.api.bodies import JsonBodyRequest
from iotledger.api.errors import EXCEPTION_HANDLERS
from iotledger.api.intake import IntakeLane
from iotledger.api.lambda_iot.bulk import LambdaBulkController
from iotledger.api.lambda_iot.components import LambdaActorsController, LambdaSensorsController
from iotledger.api.lambda_iot.devices import LambdaDevicesController
from iotledger.api.lambda_iot.mqtt_actions import MqttActionsController
from iotledger.api.lambda_iot.readings import LambdaReadingsController
from iotledger.api.lambda_iot.system import SystemController
from iotledger.api.lambda_iot.users import LambdaUsersController
from iotledger.api.observer import HttpObserver
from iotledger.api.operations import OperationsController
from iotledger.api.telemetry.auth import TelemetryAuthController
from iotledger.api.telemetry.bulk import TelemetryBulkController
from iotledger.api.telemetry.commands import TelemetryCommandsController
from iotledger.api.telemetry.devices import TelemetryDevicesController
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

    return Litestar(
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
            TelemetryBulkController,
            LambdaBulkController,
        ],
        dependencies={
            "services": Provide(provide_services, sync_to_thread=False),
            "principal": Provide(provide_principal),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        request_class=JsonBodyRequest,
        request_max_body_size=services.settings.max_body_bytes,
        logging_config=None,  # the process's logging is set once (`adapters.logs`)
        openapi_config=OpenAPIConfig(
            title="iotledger",
            version="0.1.0",
            description="Event-sourced backend for IoT fleets: the Lambda IoT Core and "
            "Device Telemetry dialects over one domain.",
            path="/schema",
        ),
    )
