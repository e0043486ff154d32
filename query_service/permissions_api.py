"""Administrators grant and revoke per-document READ permissions (role `app_admin_role`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Response

from query_service.access import Permissions
from query_service.schemas import ErrorMessage, Grant, UserPermissions
from tweetpipe.auth import ADMIN_ROLE, require_roles

router = APIRouter(
    prefix="/admin/permissions",
    tags=["permissions"],
    dependencies=[Depends(require_roles(ADMIN_ROLE))],
    responses={
        401: {"model": ErrorMessage, "description": "Missing or invalid bearer token"},
        403: {"model": ErrorMessage, "description": "Not an administrator"},
    },
)
# ASCII spelled out: Python's `\w` takes any letter, JSON Schema's (the spec's) only ASCII ones.
Username = Annotated[str, Path(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.@+-]+$")]
DocumentId = Annotated[int, Path(gt=0, lt=2**63)]


@router.get("/{username}", response_model=UserPermissions)
def list_permissions(username: Username, permissions: Permissions) -> UserPermissions:
    return UserPermissions(
        username=username, document_ids=sorted(permissions.readable_ids(username))
    )


@router.put(
    "/{username}/documents/{document_id}",
    response_model=Grant,
    status_code=201,
    responses={200: {"model": Grant, "description": "Already granted"}},
)
def grant(
    username: Username, document_id: DocumentId, permissions: Permissions, response: Response
) -> Grant:
    """Give the user READ on the document (idempotent: 201 when new, 200 when it existed)."""
    if not permissions.grant(username, document_id):
        response.status_code = 200
    return Grant(username=username, document_id=document_id)


@router.delete(
    "/{username}/documents/{document_id}",
    status_code=204,
    responses={404: {"model": ErrorMessage, "description": "No such permission"}},
)
def revoke(username: Username, document_id: DocumentId, permissions: Permissions) -> Response:
    if not permissions.revoke(username, document_id):
        raise HTTPException(404, f"{username} has no READ permission on {document_id}")
    return Response(status_code=204)
