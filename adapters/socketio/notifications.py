"""The /notifications namespace: every connection joins its user's channel; nothing more."""

from __future__ import annotations

from adapters.socketio.base import BaseNamespace
from application.handshake import HandshakeGuard
from application.pipeline import CommandPipeline
from domain.model import NOTIFICATIONS_NAMESPACE
from domain.ports import MetricsCollector, TokenVerifier
from domain.services import ConnectionManager


class NotificationsNamespace(BaseNamespace):
    """/notifications on the shared base: `notification:*` commands, per-user delivery."""

    def __init__(
        self,
        *,
        verifier: TokenVerifier,
        connections: ConnectionManager,
        pipeline: CommandPipeline,
        metrics: MetricsCollector,
        guard: HandshakeGuard | None = None,
    ) -> None:
        super().__init__(
            NOTIFICATIONS_NAMESPACE,
            verifier=verifier,
            connections=connections,
            pipeline=pipeline,
            metrics=metrics,
            guard=guard,
        )
