"""The demo chat page (dev mode only): `/` serves it, `/static/` its files.

The page talks to the server like any client: `socket.io.min.js` (socket.io-client 4.8.4,
shipped in `static/vendor/`), the JavaScript client `static/switchboard.js`, and the page
logic `static/app.js`. Nothing is loaded from a CDN.
"""

from __future__ import annotations

from adapters.web.demo import STATIC_DIR, mount_demo

__all__ = ["STATIC_DIR", "mount_demo"]
