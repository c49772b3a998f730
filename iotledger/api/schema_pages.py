"""The documents and their pages: `/schema` (Swagger UI), `/schema/swagger`,
`/schema/redoc`, the assets they load, and `/schema/asyncapi.json`, all served from here.

Litestar's pages load Swagger UI, Redoc, fonts and a favicon from CDNs by default, so
they are blank without internet. Swagger UI comes from the pinned PyPI package
`swagger-ui-bundle-v2`; Redoc, which no Python package ships, is vendored from npm
(`assets/redoc/SOURCE.md`); Redoc's Google fonts are turned off.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
from litestar import get
from litestar.enums import MediaType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin
from litestar.router import Router
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler
from swagger_ui_bundle import swagger_ui_path

from iotledger.api.asyncapi import asyncapi_document
from iotledger.settings import Settings

SCHEMA = "/schema"
ASSETS = f"{SCHEMA}/assets"
SWAGGER_UI = f"{ASSETS}/swagger-ui"
REDOC = f"{ASSETS}/redoc"
ASYNCAPI = f"{SCHEMA}/asyncapi.json"
REDOC_FILES = Path(__file__).parent / "assets" / "redoc"
FAVICON = f"<link rel='icon' type='image/png' href='{SWAGGER_UI}/favicon-32x32.png'>"


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="iotledger",
        version="0.1.0",
        description="Event-sourced backend for IoT fleets: the Lambda IoT Core and "
        "Device Telemetry dialects over one domain. The MQTT protocols: "
        f"[{ASYNCAPI}]({ASYNCAPI}) (AsyncAPI 3.0).",
        path=SCHEMA,
        render_plugins=[
            SwaggerRenderPlugin(
                path=["/", "/swagger"],
                js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
                css_url=f"{SWAGGER_UI}/swagger-ui.css",
                standalone_preset_js_url=f"{SWAGGER_UI}/swagger-ui-standalone-preset.js",
                favicon=FAVICON,
            ),
            RedocRenderPlugin(
                path="/redoc",
                js_url=f"{REDOC}/redoc.standalone.js",
                google_fonts=False,
                favicon=FAVICON,
            ),
        ],
    )


def schema_routes(settings: Settings) -> list[ControllerRouterHandler]:
    return [*asset_routers(), asyncapi_route(settings)]


def asset_routers() -> list[Router]:
    return [
        create_static_files_router(SWAGGER_UI, [Path(str(swagger_ui_path))], name="swagger-ui"),
        create_static_files_router(REDOC, [REDOC_FILES], name="redoc"),
    ]


def asyncapi_route(settings: Settings) -> HTTPRouteHandler:
    """The AsyncAPI document, made once: it depends on the settings only."""
    document = msgspec.json.encode(asyncapi_document(settings))

    @get(ASYNCAPI, media_type=MediaType.JSON, include_in_schema=False, sync_to_thread=False)
    def asyncapi() -> bytes:
        return document

    return asyncapi
