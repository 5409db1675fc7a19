"""`BaseNamespace`: what every Switchboard namespace shares.

Handshake auth through the `TokenVerifier` port, connection registration with the
`ConnectionManager`, the `user:<id>` channel, and dispatch of every other event through the
namespace's `CommandPipeline` (unknown names included, which answer `unknown_event`).
Namespaces are singletons: per-connection state lives in the Socket.IO session.
"""

from __future__ import annotations

import socketio
from aiohttp import web

from application.contract import wire
from application.handshake import HandshakeGuard
from application.logging import get_logger
from application.pipeline import CommandPipeline
from domain.errors import AuthRequired, DomainError
from domain.model import Identity, Sid, UserId
from domain.ports import MetricsCollector, TokenVerifier
from domain.services.connections import ConnectionManager

log = get_logger("switchboard.socketio")

SESSION_USER = "user_id"
SESSION_NAME = "name"


def refuse(code: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    """A handshake refusal with the contract's `{"code", "message"}` data."""
    return socketio.exceptions.ConnectionRefusedError(message, {"code": code, "message": message})


class BaseNamespace(socketio.AsyncNamespace):  # type: ignore[misc]  # untyped library base
    """Shared connect/disconnect/dispatch; subclasses add what happens around a connection."""

    def __init__(
        self,
        namespace: str,
        *,
        verifier: TokenVerifier,
        connections: ConnectionManager,
        pipeline: CommandPipeline,
        metrics: MetricsCollector,
        guard: HandshakeGuard | None = None,
    ) -> None:
        super().__init__(namespace)
        self.verifier = verifier
        self.connections = connections
        self.pipeline = pipeline
        self.metrics = metrics
        self.guard = guard

    async def trigger_event(self, event: str, *args: object) -> object:
        """Route the handshake, the disconnect and every command; never raises."""
        if event == "connect":
            sid, environ, auth = (*args, None, None)[:3]
            await self._connect(str(sid), environ, auth)
            return True
        if event == "disconnect":
            await self._disconnect(str(args[0]))
            return None
        sid = str(args[0])
        raw: object = args[1] if len(args) > 1 else {}
        user_id = await self._user_of(sid)
        if user_id is None:  # the connection is gone or was never authenticated
            return None
        return await self.pipeline.dispatch(event, sid, user_id, raw)

    async def _connect(self, sid: Sid, environ: object, auth: object) -> None:
        try:
            if self.guard is not None:
                await self.guard.admit_ip(self._client_ip(environ))
            identity = await self.verifier.verify(_token_of(auth))
            if self.guard is not None:
                await self.guard.admit_user(identity.user_id, self.namespace)
        except DomainError as exc:
            self.metrics.record_error(exc.code)
            raise refuse(exc.code, exc.message) from None
        except Exception:
            self.metrics.record_error("internal")
            log.exception("auth_crashed", namespace=self.namespace)
            raise refuse("internal", "authentication failed on the server") from None
        try:
            await self.save_session(
                sid, {SESSION_USER: identity.user_id, SESSION_NAME: identity.name}
            )
            await self.enter_room(sid, wire.user_channel(identity.user_id))
            await self.register(sid, identity)
            if self.guard is not None:
                # two handshakes may have passed admit_user at once: the later one yields
                await self.guard.confirm_user(identity.user_id, self.namespace, sid)
        except DomainError as exc:
            await self._forget(sid, identity.user_id)
            raise refuse(exc.code, exc.message) from None
        except Exception:
            log.exception("connect_crashed", namespace=self.namespace, user_id=identity.user_id)
            await self._forget(sid, identity.user_id)
            raise refuse("unavailable", "the server could not register the connection") from None
        if not self._transport_alive(sid):
            # the client left while we registered it; python-socketio runs no disconnect
            # handler for a half-connected sid, so undo here or the user stays online
            await self._forget(sid, identity.user_id)
            raise refuse("unavailable", "the connection closed during the handshake")
        self.metrics.increment_connections(self.namespace, 1)

    def _client_ip(self, environ: object) -> str:
        request = environ.get("aiohttp.request") if isinstance(environ, dict) else None
        if not isinstance(request, web.BaseRequest) or self.guard is None:
            return "unknown"
        return self.guard.client_ip(request.remote, request.headers)

    async def _disconnect(self, sid: Sid) -> None:
        user_id = await self._user_of(sid)
        if user_id is not None and await self._forget(sid, user_id):
            self.metrics.increment_connections(self.namespace, -1)

    async def _forget(self, sid: Sid, user_id: UserId) -> bool:
        try:
            return await self.unregister(sid, user_id)
        except Exception:
            log.exception("disconnect_crashed", namespace=self.namespace, user_id=user_id)
            return False

    def _transport_alive(self, sid: Sid) -> bool:
        eio_sid = self.server.manager.eio_sid_from_sid(sid, self.namespace)
        return eio_sid is not None and eio_sid in self.server.environ

    async def _user_of(self, sid: Sid) -> UserId | None:
        try:
            session = await self.get_session(sid)
        except KeyError:
            return None
        user_id = session.get(SESSION_USER) if isinstance(session, dict) else None
        return user_id if isinstance(user_id, str) else None

    async def register(self, sid: Sid, identity: Identity) -> None:
        """Record the new connection; chat overrides this to announce presence."""
        await self.connections.register_connection(identity.user_id, sid, self.namespace)

    async def unregister(self, sid: Sid, user_id: UserId) -> bool:
        """Forget a closed connection (False if it was not registered); chat overrides this."""
        return await self.connections.unregister_connection(user_id, sid) is not None


def _token_of(auth: object) -> str:
    if isinstance(auth, dict):
        token = auth.get("token")
        if isinstance(token, str) and token:
            return token
    raise AuthRequired()
