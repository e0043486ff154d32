"""Who may read what. Super users read every document; users read the documents they hold a
READ permission for; anyone else is refused. Administrators manage the permissions."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from query_service.permissions import PermissionRepository
from tweetpipe.auth import SUPER_USER_ROLE, USER_ROLE, CurrentPrincipal, Principal

FORBIDDEN = "you do not have permission to read documents"
log = logging.getLogger(__name__)


class ReadScope:
    """What one caller may read: every document (`ids is None`) or exactly `ids`."""

    def __init__(
        self, principal: Principal, permissions: PermissionRepository, everything: bool
    ) -> None:
        self.principal = principal
        self._permissions = permissions
        self._everything = everything

    @property
    def username(self) -> str:
        return self.principal.username or self.principal.subject

    async def ids(self) -> frozenset[int] | None:
        """The readable ids to filter the store query by; None means no filter. Permissions
        are looked up in SQL from a thread: the database is a network call away."""
        if self._everything:
            return None
        return await run_in_threadpool(self._permissions.readable_ids, self.username)

    async def require(self, document_id: int) -> None:
        if self._everything or await run_in_threadpool(
            self._permissions.can_read, self.username, document_id
        ):
            return
        log.info(
            "refused document %d to %s: no READ permission",
            document_id,
            self.username,
            extra={"user.name": self.username},
        )
        raise HTTPException(403, "you do not have permission to read this document")


async def get_permissions(request: Request) -> PermissionRepository:
    repository: PermissionRepository = request.app.state.permissions
    return repository


Permissions = Annotated[PermissionRepository, Depends(get_permissions)]


async def read_scope(principal: CurrentPrincipal, permissions: Permissions) -> ReadScope:
    if principal.has_any_role(SUPER_USER_ROLE):
        return ReadScope(principal, permissions, everything=True)
    if principal.has_any_role(USER_ROLE):
        return ReadScope(principal, permissions, everything=False)
    raise HTTPException(403, FORBIDDEN)


Scope = Annotated[ReadScope, Depends(read_scope)]
