"""The API's declared contract (OpenAPI) says what the service does: every error status it
answers and the shape of its error body, the time formats it takes, text without NUL, the rule
language of rule bodies, and an ``Allow`` header on 405 that lists what the path serves.

Checked by a schemathesis run against the real service (tests/integration/test_api_fuzz.py)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, WithJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from monitor.api.auth import needed_role
from rules.spec import Rule

EPOCH = r"^[0-9]{1,11}(\.[0-9]{1,9})?$"
EPOCH_RE = re.compile(EPOCH)
TIME_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "string", "pattern": EPOCH},
        {"type": "string", "maxLength": 0},
    ],
    "description": "RFC 3339 with a zone (Z or +08:00), or epoch seconds; empty: not given",
}
TimeText = Annotated[str, WithJsonSchema(TIME_SCHEMA)]
"""An optional time in a query or body: parsed by ``monitor.api.deps.parse_time``."""
TimeBody = Annotated[
    str,
    WithJsonSchema({**TIME_SCHEMA, "anyOf": TIME_SCHEMA["anyOf"][:2], "description": "a time"}),
]
"""A time that must be given."""
# parsed by rules.spec.parse_rule; the contract refers to the rule language's own schema
# (a placeholder here: pydantic resolves "$ref" itself and knows no such component)
RuleText = Annotated[dict[str, Any], WithJsonSchema({"x-riskmon-ref": "Rule"})]
RuleBodyText = Annotated[dict[str, Any], WithJsonSchema({"x-riskmon-ref": "RuleBody"})]

NO_NUL = "^[^\\u0000]*$"  # PostgreSQL text cannot hold NUL: such text is refused with 422
ERROR_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "anyOf": [{"type": "string"}, {"type": "array", "items": {}}],
            "description": "what went wrong, in one line (or one item per invalid field)",
        }
    },
}
ERRORS = {
    "400": "the body is not JSON",
    "401": "no token or an unknown token",
    "403": "the token's role or enterprise may not do this",
    "404": "not found (or not visible to this token)",
    "409": "does not fit the current state",
    "422": "invalid input",
    "429": "too many failed sign-ins from this address",
    "503": "the store is failing, or this role does not serve it",
}
TEXT = {"/metrics": "text/plain", "/console": "text/html"}


def install(app: FastAPI) -> None:
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        headers = dict(err.headers or {})
        if err.status_code == 405:
            headers["Allow"] = ", ".join(allowed(app, request))
        return JSONResponse({"detail": err.detail}, err.status_code, headers=headers)


def allowed(app: FastAPI, request: Request) -> list[str]:
    """The methods the path serves.  A literal path wins over a template, as in OpenAPI
    (``/rules/backtest`` is not the rule named "backtest")."""
    found: dict[int, set[str]] = {}
    for route in app.router.routes:
        match, _ = route.matches(request.scope)
        methods = getattr(route, "methods", None)
        path = str(getattr(route, "path", ""))
        if match is not Match.NONE and methods:
            found.setdefault(path.count("/") - path.count("{"), set()).update(methods)
    best = found[max(found)] if found else set()
    return sorted(best - {"HEAD"})


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        spec = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        components["ErrorBody"] = ERROR_BODY
        rule = TypeAdapter(Rule).json_schema(ref_template="#/components/schemas/{model}")
        components.update(rule.pop("$defs", {}))
        components["Rule"] = rule
        components["RuleBody"] = _without_id(rule, components)
        spec["components"]["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "a personal token of RISKMON_TOKENS (or RISKMON_ADMIN_TOKEN)",
            }
        }
        spec["security"] = [{"bearer": []}]
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                _declare(path, operation)
                if needed_role(method.upper(), path) is None:
                    operation["security"] = []  # open: health, readiness, metrics, console
        _no_nul(spec)  # also resolves the rule placeholders
        app.openapi_schema = spec
    return app.openapi_schema


def _declare(path: str, operation: dict[str, Any]) -> None:
    responses = operation["responses"]
    for status, why in ERRORS.items():
        responses[status] = {
            "description": why,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        }
    if path in TEXT:
        responses["200"]["content"] = {TEXT[path]: {"schema": {"type": "string"}}}


def _without_id(rule: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """A PUT body is a rule whose id may be left out (the path names it)."""
    refs = {}
    for ref in rule["discriminator"]["mapping"].values():
        name = ref.rsplit("/", 1)[1]
        required = components[name].setdefault("required", [])
        required += [] if "type" in required else ["type"]  # the discriminator is named
        schema = {**components[name], "title": f"{name}Body"}
        schema["properties"] = {k: v for k, v in schema["properties"].items() if k != "id"}
        schema["required"] = [k for k in schema.get("required", []) if k != "id"]
        components[f"{name}Body"] = schema
        refs[ref] = f"#/components/schemas/{name}Body"
    return {
        "oneOf": [{"$ref": refs[one["$ref"]]} for one in rule["oneOf"]],
        "discriminator": {
            "propertyName": "type",
            "mapping": {k: refs[v] for k, v in rule["discriminator"]["mapping"].items()},
        },
    }


def _no_nul(node: Any) -> None:
    """Every free text in the contract says it holds no NUL; placeholders become refs."""
    if isinstance(node, dict):
        if "x-riskmon-ref" in node:  # a bare ref: some tools ignore a ref with siblings
            name = node["x-riskmon-ref"]
            node.clear()
            node["$ref"] = f"#/components/schemas/{name}"
        if node.get("type") == "string" and not {"format", "pattern", "enum", "const"} & set(node):
            node["pattern"] = NO_NUL
        if node.get("type") == "object" and node.get("additionalProperties", True) is not False:
            node.setdefault("propertyNames", {"pattern": NO_NUL})
        for value in node.values():
            _no_nul(value)
    elif isinstance(node, list):
        for value in node:
            _no_nul(value)


__all__ = ["EPOCH_RE", "RuleBodyText", "RuleText", "TimeBody", "TimeText", "install"]
