"""API versions by media type: `Accept: application/vnd.api.v2+json` asks for v2.

Plain `application/json`, `*/*` or no Accept header get v1, as classic clients expect; a
request that accepts only versions this service does not have gets 406.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

V1 = "application/vnd.api.v1+json"
V2 = "application/vnd.api.v2+json"
MEDIA_TYPES = {1: V1, 2: V2}
_VENDOR = re.compile(r"application/vnd\.api\.v(\d+)\+json")

Version = Literal[1, 2]


async def negotiate(request: Request) -> Version:
    accept = request.headers.get("accept", "")
    asked = [int(v) for v in _VENDOR.findall(accept)]
    if 2 in asked:
        return 2
    rest = _VENDOR.sub("", accept)
    if 1 in asked or not accept.strip() or "application/json" in rest or "*/*" in rest:
        return 1
    raise HTTPException(
        406, f"unsupported API version; this service offers {', '.join(MEDIA_TYPES.values())}"
    )


ApiVersion = Annotated[Version, Depends(negotiate)]


def versioned(body: BaseModel, version: Version, status_code: int = 200) -> JSONResponse:
    return JSONResponse(
        body.model_dump(mode="json"), status_code=status_code, media_type=MEDIA_TYPES[version]
    )


def versioned_responses(v1: type[BaseModel], v2: type[BaseModel]) -> dict[int | str, Any]:
    """OpenAPI: the 200 answer in both media types (the models must be in the schema, which
    `response_model=v1 | v2` on the route ensures)."""
    return {
        200: {
            "content": {
                V1: {"schema": {"$ref": f"#/components/schemas/{v1.__name__}"}},
                V2: {"schema": {"$ref": f"#/components/schemas/{v2.__name__}"}},
            }
        },
        406: {"description": "No acceptable API version"},
    }
