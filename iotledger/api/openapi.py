"""What the OpenAPI document says that Litestar cannot see by itself: who must sign in,
and how each operation fails, in its dialect's own error body.

Derived, never written per handler, so an endpoint added later is described the same
way: the dialect from the path (`errors.speaks_telemetry`); the security from the
dependencies a handler needs (`principal`: a bearer token; `caller`: that or a device's
Basic credentials); the failures from its inputs (a parameter or a body can be invalid:
400; a path names what may be absent: 404; a body can be too large: 413), from its
security (401), from what it touches (the database can time out: 503), and from the
errors a handler declares with `raises(...)`, whose statuses come from the one mapping
in `errors`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any, NamedTuple, cast

import msgspec
from litestar import Litestar
from litestar.enums import ParamType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    Schema,
    SecurityScheme,
)
from litestar.routes import HTTPRoute

from iotledger.api.errors import LambdaError, TelemetryError, speaks_telemetry, status_class_of

BEARER = "bearer"
BASIC = "basic"
SECURITY_SCHEMES = {
    BEARER: SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="JWT",
        description="The token of `POST /login` or `POST /api/v1/auth/login`.",
    ),
    BASIC: SecurityScheme(
        type="http",
        scheme="basic",
        description="A device's issued credentials (`POST /api/v1/devices/{id}/credentials`), "
        "on its own device's paths only.",
    ),
}
SCHEMES_OF_DEPENDENCY = {"principal": (BEARER,), "caller": (BEARER, BASIC)}
"""A handler that needs this dependency (directly or through another) needs one of these."""


RAISES = "raises"
RETRY_AFTER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
    description="Seconds to wait before asking again",
    required=True,
)


def raises(*errors: type[Exception] | int) -> dict[str, Any]:
    """A handler's `opt`: the errors it answers beyond those its inputs and security imply,
    each an error class (answered as `errors` maps it) or the status of an exception
    handler of its own."""
    return {RAISES: errors}


def status_raised(error: type[Exception] | int) -> int:
    return error if isinstance(error, int) else status_class_of(error)


class Dialect(NamedTuple):
    name: str
    body: type[msgspec.Struct]


TELEMETRY = Dialect("Telemetry", TelemetryError)
LAMBDA = Dialect("Lambda", LambdaError)


def dialect_of(path: str) -> Dialect:
    return TELEMETRY if speaks_telemetry(path) else LAMBDA


def response_name(dialect: Dialect, status: int) -> str:
    """`TelemetryNotFound`, `LambdaTooManyRequests`, ..."""
    return dialect.name + re.sub(r"\W", "", HTTPStatus(status).phrase.title())


def describe(app: Litestar) -> None:
    """Complete the application's OpenAPI document in place (Litestar builds it once and
    serves that one object from then on)."""
    document = app.openapi_schema
    statuses: set[tuple[Dialect, int]] = set()
    for path, method, handler, operation in operations(app, document):
        dialect, failures = dialect_of(path), failures_of(handler, operation, method)
        describe_failures(operation, handler, dialect, failures)
        drop_bodies(operation, method)
        statuses.update((dialect, status) for status in failures)
        operation.security = [{scheme: []} for scheme in schemes_of(handler)] or None
    distinguish_summaries(document)
    add_components(document, statuses)


def operations(
    app: Litestar, document: OpenAPI
) -> Iterator[tuple[str, str, HTTPRouteHandler, Operation]]:
    """Every documented operation with the handler that answers it."""
    for route in app.routes:
        path_item = (document.paths or {}).get(route.path_format or "/")
        if not isinstance(route, HTTPRoute) or path_item is None:
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                operation = getattr(path_item, method.lower(), None)
                if isinstance(operation, Operation):
                    yield route.path_format, method, handler, operation


def needs(handler: HTTPRouteHandler) -> set[str]:
    """The names of the dependencies `handler` needs, directly or through another."""
    provided = handler.resolve_dependencies()
    wanted, seen = list(handler.parsed_fn_signature.parameters), set[str]()
    while wanted:
        name = wanted.pop()
        if name in provided and name not in seen:
            seen.add(name)
            wanted.extend(provided[name].parsed_fn_signature.parameters)
    return seen


def schemes_of(handler: HTTPRouteHandler) -> list[str]:
    """The schemes any one of which lets a caller in (none: a public operation)."""
    wanted = needs(handler)
    schemes = [s for name, names in SCHEMES_OF_DEPENDENCY.items() if name in wanted for s in names]
    return list(dict.fromkeys(schemes))


def failures_of(handler: HTTPRouteHandler, operation: Operation, method: str) -> set[int]:
    """Every error status the operation can answer."""
    if method == "HEAD":
        return set()  # no body to describe; a probe declares its own answers
    places = {p.param_in for p in operation.parameters or [] if isinstance(p, Parameter)}
    has_body = operation.request_body is not None
    statuses = {status_raised(error) for error in handler.opt.get(RAISES, ())}
    statuses |= {400} if has_body or places & {ParamType.PATH, ParamType.QUERY} else set()
    statuses |= {404} if ParamType.PATH in places else set()
    statuses |= {413} if has_body else set()
    statuses |= {401} if schemes_of(handler) else set()
    statuses |= {503} if touches_parts(handler) else set()
    return statuses


def touches_parts(handler: HTTPRouteHandler) -> bool:
    """Whether the handler declares a part of the process (`api.deps`: PostgreSQL above
    all, which may time out: 503); who is calling (`principal`, `caller`) does not count,
    though it reads the token's key."""
    provided = handler.resolve_dependencies()
    declared = set(handler.parsed_fn_signature.parameters) & set(provided)
    return bool(declared - set(SCHEMES_OF_DEPENDENCY))


def describe_failures(
    operation: Operation, handler: HTTPRouteHandler, dialect: Dialect, failures: set[int]
) -> None:
    """Litestar's guesses (its own 400 body) give way to the dialect's answers; what a
    handler declares itself (`responses=`) stays."""
    declared = {str(status) for status in handler.responses or {}}
    responses: dict[str, OpenAPIResponse | Reference] = {
        status: response
        for status, response in (operation.responses or {}).items()
        if int(status) < 400 or status in declared
    }
    for status in sorted(failures):
        ref = f"#/components/responses/{response_name(dialect, status)}"
        responses.setdefault(str(status), Reference(ref=ref))
    operation.responses = dict(sorted(responses.items()))


def drop_bodies(operation: Operation, method: str) -> None:
    """Litestar describes `None` as a JSON null; a 204, and any answer to HEAD, has no body."""
    for status, response in (operation.responses or {}).items():
        if isinstance(response, OpenAPIResponse) and (status == "204" or method == "HEAD"):
            response.content = None


def distinguish_summaries(document: OpenAPI) -> None:
    """Summaries read as words (`ListComponents`: "List components"), and those that two
    operations share (the sensors' and the actors' verbs) name their tag too."""
    found = [op for item in (document.paths or {}).values() for op in item_operations(item)]
    for op in found:
        op.summary = words(op.summary or op.operation_id or "")
    counts = Counter(op.summary for op in found)
    for op in found:
        if counts[op.summary] > 1 and op.tags:
            op.summary = f"{op.summary} ({op.tags[0]})"


def words(summary: str) -> str:
    """Litestar's default summary (the handler's name in CamelCase) as a sentence."""
    if " " in summary:
        return summary
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: " " + m.group(1).lower(), summary)


def item_operations(item: Any) -> list[Operation]:
    methods = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
    return [op for name in methods if isinstance(op := getattr(item, name, None), Operation)]


def add_components(document: OpenAPI, statuses: set[tuple[Dialect, int]]) -> None:
    components = document.components or Components()
    components.security_schemes = {**(components.security_schemes or {}), **SECURITY_SCHEMES}
    schemas = body_schemas()
    components.schemas = {**(components.schemas or {}), **schemas}
    components.responses = {
        response_name(dialect, status): error_response(dialect, status)
        for dialect, status in sorted(statuses, key=lambda d_s: (d_s[0].name, d_s[1]))
    }
    document.components = components


def body_schemas() -> dict[str, Schema]:
    """The dialects' error bodies, as msgspec (which encodes them) describes them."""
    _, schemas = msgspec.json.schema_components(
        [TELEMETRY.body, LAMBDA.body], ref_template="#/components/schemas/{name}"
    )
    return cast(dict[str, Schema], schemas)  # plain JSON Schema: Litestar emits dicts as is


def error_response(dialect: Dialect, status: int) -> OpenAPIResponse:
    body = Reference(ref=f"#/components/schemas/{dialect.body.__name__}")
    retry = status in {429, 503}
    return OpenAPIResponse(
        description=HTTPStatus(status).phrase,
        content={"application/json": OpenAPIMediaType(schema=body)},
        headers={"Retry-After": RETRY_AFTER} if retry else None,
    )
