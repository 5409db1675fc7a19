"""Routes of the demo page: `GET /` (the page) and `GET /static/...` (its files)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
"""Only our own files run on the page: an injected inline script would be refused too."""


async def index(_: web.Request) -> web.FileResponse:
    """The demo page, with a strict Content-Security-Policy."""
    response = web.FileResponse(STATIC_DIR / "index.html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-cache"
    return response


def mount_demo(app: web.Application) -> None:
    """Add `GET /` and `GET /static/...` to the app (call it only in dev mode)."""
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
