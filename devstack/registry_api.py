"""Single-machine profile only: Eureka's REST API (`/eureka/...`) over the local `Registry`.

Answers in XML unless the client asks for JSON (`Accept: application/json`), like Eureka;
registrations may be JSON or XML. Status codes are Eureka's: 204 for a registration, 200 for
renewals, cancels and status or metadata changes, 404 for an unknown instance (which tells a
client to register again).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, cast

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from prometheus_client import Counter, Gauge
from pydantic import ValidationError

from devstack.registry_store import Registry
from devstack.registry_xml import BadXml, from_xml, to_xml
from tweetpipe.eureka import (
    STATUSES,
    Applications,
    InstanceEnvelope,
    InstanceInfo,
    InstanceStatus,
)

log = logging.getLogger(__name__)

INSTANCES = Gauge("tweetpipe_registry_instances", "Instances currently registered")
REGISTRATIONS = Counter("tweetpipe_registry_registrations_total", "Registrations accepted")
RENEWALS = Counter(
    "tweetpipe_registry_renewals_total", "Lease renewals by outcome (ok, unknown)", ["outcome"]
)
CANCELS = Counter("tweetpipe_registry_cancels_total", "Instances that deregistered")
EVICTIONS = Counter("tweetpipe_registry_evictions_total", "Instances dropped after lease expiry")
REJECTED = Counter(
    "tweetpipe_registry_rejected_total", "Requests refused as malformed, by reason", ["reason"]
)

router = APIRouter(prefix="/eureka", tags=["eureka"])


def get_registry(request: Request) -> Registry:
    return cast(Registry, request.app.state.registry)


Store = Annotated[Registry, Depends(get_registry)]


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    json_at, xml_at = accept.find("json"), accept.find("xml")
    return json_at >= 0 and (xml_at < 0 or json_at < xml_at)


def _answer(request: Request, root: str, document: dict[str, Any]) -> Response:
    if _wants_json(request):
        return Response(orjson.dumps({root: document}), media_type="application/json")
    return Response(to_xml(root, document), media_type="application/xml")


def _applications(request: Request, applications: Applications) -> Response:
    return _answer(
        request, "applications", applications.model_dump(by_alias=True, exclude_none=True)
    )


def _unknown(what: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"not registered: {what}")


def _reject(reason: str, detail: str) -> HTTPException:
    REJECTED.labels(reason).inc()
    log.warning("rejected a registry request (%s): %s", reason, detail)
    return HTTPException(status_code=400, detail=detail)


def _status(value: str | None) -> InstanceStatus | None:
    if value is None or value == "":
        return None
    if value not in STATUSES:
        raise _reject("status", f"unknown status {value!r}; expected one of {', '.join(STATUSES)}")
    return value


async def _instance_from(request: Request, app: str) -> InstanceInfo:
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    is_xml = "xml" in content_type or (
        "json" not in content_type and body.lstrip().startswith(b"<")
    )
    try:
        document = {"instance": from_xml(body, "instance")} if is_xml else orjson.loads(body)
        instance = InstanceEnvelope.model_validate(document).instance
    except (BadXml, orjson.JSONDecodeError) as exc:
        raise _reject("malformed", f"registration body is not an instance document: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise _reject("invalid", f"invalid instance: {problems}") from exc
    if instance.app != app.upper():
        raise _reject("app", f"mismatched app name: path says {app}, body says {instance.app}")
    return instance


@router.post("/apps/{app}", status_code=204)
async def register(app: str, request: Request, registry: Store) -> Response:
    instance = registry.register(await _instance_from(request, app))
    REGISTRATIONS.inc()
    log.info(
        "registered %s %s at %s (%s)",
        instance.app,
        instance.instance_id,
        instance.base_url,
        instance.status,
        extra={"eureka.app": instance.app, "eureka.instance_id": instance.instance_id},
    )
    return Response(status_code=204)


@router.put("/apps/{app}/{instance_id}")
async def renew(
    app: str,
    instance_id: str,
    registry: Store,
    last_dirty_timestamp: Annotated[int | None, Query(alias="lastDirtyTimestamp")] = None,
) -> Response:
    """Renew a lease; 404 makes the client register again."""
    if not registry.renew(app, instance_id, last_dirty_timestamp):
        RENEWALS.labels("unknown").inc()
        raise _unknown(f"{app}/{instance_id}")
    RENEWALS.labels("ok").inc()
    return Response(status_code=200)


@router.delete("/apps/{app}/{instance_id}")
async def cancel(app: str, instance_id: str, registry: Store) -> Response:
    if not registry.cancel(app, instance_id):
        raise _unknown(f"{app}/{instance_id}")
    CANCELS.inc()
    log.info("deregistered %s %s", app.upper(), instance_id)
    return Response(status_code=200)


@router.put("/apps/{app}/{instance_id}/status")
async def override_status(
    app: str, instance_id: str, registry: Store, value: str | None = None
) -> Response:
    status = _status(value)
    if status is None:
        raise _reject("status", "missing ?value= (e.g. OUT_OF_SERVICE)")
    if not registry.override_status(app, instance_id, status):
        raise _unknown(f"{app}/{instance_id}")
    log.info("status of %s %s overridden to %s", app.upper(), instance_id, status)
    return Response(status_code=200)


@router.delete("/apps/{app}/{instance_id}/status")
async def remove_override(
    app: str, instance_id: str, registry: Store, value: str | None = None
) -> Response:
    if not registry.remove_override(app, instance_id, _status(value)):
        raise _unknown(f"{app}/{instance_id}")
    log.info("status override of %s %s removed", app.upper(), instance_id)
    return Response(status_code=200)


@router.put("/apps/{app}/{instance_id}/metadata")
async def update_metadata(
    app: str, instance_id: str, request: Request, registry: Store
) -> Response:
    items = dict(request.query_params)
    if not items:
        raise _reject("metadata", "no metadata given (?key=value)")
    if not registry.update_metadata(app, instance_id, items):
        raise _unknown(f"{app}/{instance_id}")
    return Response(status_code=200)


@router.get("/apps")
@router.get("/apps/", include_in_schema=False)
async def applications(request: Request, registry: Store) -> Response:
    return _applications(request, registry.applications())


@router.get("/apps/delta")
async def delta(request: Request, registry: Store) -> Response:
    """Changes from the last few minutes, each with its `actionType`."""
    return _applications(request, registry.delta())


@router.get("/apps/{app}")
async def application(app: str, request: Request, registry: Store) -> Response:
    found = registry.application(app)
    if found is None:
        raise _unknown(app)
    return _answer(request, "application", found.model_dump(by_alias=True, exclude_none=True))


@router.get("/apps/{app}/{instance_id}")
async def app_instance(app: str, instance_id: str, request: Request, registry: Store) -> Response:
    found = registry.instance(instance_id, app)
    if found is None:
        raise _unknown(f"{app}/{instance_id}")
    return _answer(request, "instance", found.document())


@router.get("/instances/{instance_id}")
async def instance(instance_id: str, request: Request, registry: Store) -> Response:
    found = registry.instance(instance_id)
    if found is None:
        raise _unknown(instance_id)
    return _answer(request, "instance", found.document())


@router.get("/vips/{vip}")
async def vip(vip: str, request: Request, registry: Store) -> Response:
    return _applications(request, registry.by_vip(vip))


@router.get("/svips/{svip}")
async def svip(svip: str, request: Request, registry: Store) -> Response:
    return _applications(request, registry.by_vip(svip, secure=True))
