"""The admin token check that guards every state-changing endpoint."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="SALESCAST_ADMIN_TOKEN")


def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 without a bearer token; 403 when it is wrong or when none is configured."""
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="this endpoint needs 'Authorization: Bearer <SALESCAST_ADMIN_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    configured = request.app.state.settings.admin_token
    if configured is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="no admin token is configured on this server (set SALESCAST_ADMIN_TOKEN)",
        )
    # compare_digest: the time taken must not reveal how much of the token matched.
    expected = configured.get_secret_value().encode()
    if not hmac.compare_digest(credentials.credentials.encode(), expected):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="wrong admin token")


AdminOnly = [Depends(require_admin)]
