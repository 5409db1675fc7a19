"""Baseline (a): the naive python-socketio stack doing the same fan-out as Switchboard.

An `AsyncServer` on aiohttp with a `/chat` namespace; the connect handler verifies the same
HS256 JWT with PyJWT (no cache: each token is new anyway), `join` puts the sid in a room,
`send` emits a `message:new` shaped like Switchboard's message resource to the room (the
sender included, as in Switchboard) and acks the message. No store, no presence, no rate
limits, no logging: what someone would write in an afternoon.

    python -m tests.perf.baseline_server --port 8090   (secret in SWITCHBOARD_JWT_SECRET)
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from collections import defaultdict

import jwt
import socketio
from aiohttp import web

NAMESPACE = "/chat"


def _iso_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def build_app(secret: str) -> web.Application:
    """The aiohttp app with the Socket.IO server attached."""
    sio = socketio.AsyncServer(
        async_mode="aiohttp", namespaces=[NAMESPACE], logger=False, engineio_logger=False
    )
    app = web.Application()
    sio.attach(app)
    seqs: defaultdict[str, int] = defaultdict(int)
    ids = itertools.count(1)

    async def connect(sid: str, environ: object, auth: object) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str):
            raise socketio.exceptions.ConnectionRefusedError("auth_required")
        try:
            claims = jwt.decode(token, secret, algorithms=["HS256"])
        except jwt.PyJWTError:
            raise socketio.exceptions.ConnectionRefusedError("auth_invalid") from None
        await sio.save_session(sid, {"user_id": str(claims["sub"])}, namespace=NAMESPACE)

    async def join(sid: str, data: dict[str, str]) -> dict[str, bool]:
        await sio.enter_room(sid, data["room"], namespace=NAMESPACE)
        return {"ok": True}

    async def send(sid: str, data: dict[str, str]) -> dict[str, object]:
        session = await sio.get_session(sid, namespace=NAMESPACE)
        room = data["room"]
        seqs[room] += 1
        message = {
            "id": f"{next(ids):028x}",
            "room_id": room,
            "seq": seqs[room],
            "author_id": session["user_id"],
            "text": data["text"],
            "client_msg_id": data.get("client_msg_id", ""),
            "created_at": _iso_now(),
            "edited_at": None,
            "deleted": False,
        }
        await sio.emit("message:new", message, to=room, namespace=NAMESPACE)
        return {"ok": True, "data": {"message": message}}

    sio.on("connect", connect, namespace=NAMESPACE)
    sio.on("join", join, namespace=NAMESPACE)
    sio.on("send", send, namespace=NAMESPACE)
    return app


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    secret = os.environ["SWITCHBOARD_JWT_SECRET"]
    # the same listen backlog as Switchboard's `serve`, so the storm compares handshakes
    web.run_app(
        build_app(secret), host=args.host, port=args.port, backlog=4096, print=None, access_log=None
    )


if __name__ == "__main__":
    main()
