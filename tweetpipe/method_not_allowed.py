"""405 answers whose `Allow` names every method the resource supports (RFC 9110 §15.5.6).

Starlette answers a method no route takes with the methods of the first route whose path
matched, so a resource served by two routes (`PUT` and `DELETE` on one permission) advertised
only one of them. The methods come from the app's OpenAPI document instead, the contract
clients read; as OpenAPI says, a concrete path is matched before templated ones. A path the
document does not describe (e.g. `/metrics`) keeps Starlette's answer.
"""

from __future__ import annotations

import re
from functools import cache

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def _template(path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}/]+\})", path)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))


def allowed_methods(spec: dict[str, dict[str, object]], path: str) -> list[str] | None:
    """The methods `spec` declares for `path`; `None` if it declares none there."""
    operations = spec.get(path)
    if operations is None:
        matching = [ops for template, ops in spec.items() if _template(template).fullmatch(path)]
        if not matching:
            return None
        operations = {method: op for ops in matching for method, op in ops.items()}
    methods = {m.upper() for m in operations if m in HTTP_METHODS}
    if "GET" in methods:
        methods.add("HEAD")  # Starlette answers HEAD wherever it answers GET
    return sorted(methods)


def answer_405_with_every_method(app: FastAPI) -> None:
    @cache
    def paths() -> dict[str, dict[str, object]]:
        spec: dict[str, dict[str, object]] = app.openapi().get("paths", {})
        return spec

    async def method_not_allowed(request: Request, error: Exception) -> JSONResponse:
        methods = allowed_methods(paths(), request.scope["path"])
        if methods is not None:
            allow = ", ".join(methods)
        else:
            headers = error.headers if isinstance(error, HTTPException) else None
            allow = (headers or {}).get("Allow", "")
        return JSONResponse({"detail": "Method Not Allowed"}, 405, headers={"Allow": allow})

    app.add_exception_handler(405, method_not_allowed)
