"""Bearer-token and body-size guard: pure ASGI, so it answers before FastAPI reads or parses the body."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi.responses import JSONResponse

#: Paths answered without a bearer token (load balancers and the client probe them); without a valid token
#: they show liveness only (status, version, roles), never model names, limits or load.
OPEN_PATHS: frozenset[str] = frozenset({"/health"})


class RequestGuardMiddleware:
    """Refuses unauthenticated requests (401) and bodies over ``max_request_bytes`` (413) before parsing.

    Sets ``scope["state"]["authenticated"]`` so open paths can tell a token holder from anyone else.
    """

    def __init__(self, app: Any, max_request_bytes: int, token: str | None = None) -> None:
        self.app, self.max_bytes, self.token = app, int(max_request_bytes), token

    async def _reply(self, scope: Any, receive: Any, send: Any, status: int, message: str,
                     headers: dict[str, str] | None = None) -> None:
        await JSONResponse({"detail": message}, status_code=status, headers=headers)(scope, receive, send)

    def _auth(self, headers: dict[bytes, bytes]) -> tuple[bool, str]:
        """(authenticated, why not) for the request's Authorization header."""
        if self.token is None:
            return True, ""
        auth = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, given = auth.partition(" ")
        if scheme.lower() == "bearer" and secrets.compare_digest(given.strip().encode(), self.token.encode()):
            return True, ""
        return False, "missing bearer token" if not auth else "invalid bearer token"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        ok, why = self._auth(headers)
        scope.setdefault("state", {})["authenticated"] = ok
        if not ok and scope.get("path") not in OPEN_PATHS:
            await self._reply(scope, receive, send, 401, f"{why}: send 'Authorization: Bearer <token>'",
                              {"WWW-Authenticate": "Bearer"})
            return
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                await self._reply(scope, receive, send, 400, f"bad Content-Length header: {declared!r}")
                return
            if n > self.max_bytes:
                await self._reply(scope, receive, send, 413,
                                  f"request body of {n} bytes exceeds the limit of {self.max_bytes} bytes "
                                  f"(max_request_bytes)")
                return
        # Read the body ourselves, counting bytes actually received (chunked uploads carry no length).
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            total += len(body)
            if total > self.max_bytes:
                await self._reply(scope, receive, send, 413,
                                  f"request body exceeds the limit of {self.max_bytes} bytes (max_request_bytes)")
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
