"""The demo page in headless Chromium (playwright-core from tests/e2e/node, no downloaded
browser: Debian's /usr/bin/chromium): two users chat, see each other online, get a mention
in the bell, markup stays text, and a dropped connection recovers without a gap."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from application.settings import Settings
from tests.support.inprocess import serve_in_process

pytestmark = pytest.mark.e2e

NODE_DIR = Path(__file__).parent / "node"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SECRET = "browser-secret-" + "x" * 32
XSS = "<script>alert(1)</script>"


def _settings(*, dev: bool) -> Settings:
    return Settings(dev=dev, jwt_secret=SECRET, api_key="k" * 32, coalesce_window_ms=50)


@pytest.fixture
async def dev_server() -> AsyncIterator[str]:
    async with serve_in_process(_settings(dev=True)) as url:
        yield url


def _node() -> str:
    node = shutil.which("node")
    assert node, "node is required for the browser test (apt-get install nodejs)"
    assert (NODE_DIR / "node_modules" / "playwright-core").is_dir(), (
        "run `npm ci --prefix tests/e2e/node` (scripts/test does it)"
    )
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is required (apt-get install chromium)"
    return node


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


async def test_demo_page_two_users_chat_in_chromium(dev_server: str, tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        _node(),
        str(NODE_DIR / "demo_browser.mjs"),
        dev_server,
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "CHROMIUM_PATH": CHROMIUM},
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=100)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    output = stdout.decode()
    assert process.returncode == 0, stderr.decode() + output
    report = json.loads(output.strip().splitlines()[-1])

    assert report["errors"] == []
    assert report["pageErrors"] == []
    assert report["dialogs"] == [], "a user's markup was executed"
    assert report["bobHistoryOnJoin"] == ["welcome, first message"]
    assert {"alice", "bob"} <= set(report["aliceSeesOnline"])
    assert {"alice", "bob"} <= set(report["bobSeesOnline"])
    assert report["aliceTyping"].startswith("bob is typing")
    assert report["bobUnread"] == "1"
    assert "unread" in report["bobUnreadClass"].split()
    assert report["bobNotifications"] == [
        {"title": "alice mentioned you", "body": "hi @bob, welcome", "unread": True}
    ]
    assert report["bobUnreadAfterMarkRead"] == "0"
    expected = [
        "welcome, first message",
        "hi @bob, welcome",
        XSS,
        '<img src=x onerror="alert(2)">',
    ]
    assert report["bobTexts"] == expected
    assert report["aliceTexts"] == expected
    for user in ("alice", "bob"):
        xss = report["xss"][user]
        assert xss["scriptsInMessages"] == 0, user
        assert xss["imgsInMessages"] == 0, user
        assert xss["scriptsInDocument"] == report["scriptsBefore"], user
        assert xss["xssHtml"] == "&lt;script&gt;alert(1)&lt;/script&gt;", user
    # a dropped connection: reconnecting, then back, and every message once, in order
    assert report["bobStates"] == ["closed", "connecting", "connected", "reconnecting", "connected"]
    assert report["bobMetrics"]["reconnectCount"] == 1
    assert report["bobSeqsAfterReconnect"] == [1, 2, 3, 4, 5, 6]
    assert report["bobTextsAfterReconnect"][-2:] == ["sent while bob reconnects", "and one more"]
    assert (tmp_path / "bob.png").stat().st_size > 10_000


async def test_demo_page_and_files_are_served_without_a_cdn(dev_server: str) -> None:
    status, headers, body = await asyncio.to_thread(_get, f"{dev_server}/")
    assert status == 200
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    page = body.decode()
    assert '<script src="/static/vendor/socket.io.min.js"></script>' in page
    assert "http://" not in page
    assert "https://" not in page

    status, _, vendor = await asyncio.to_thread(
        _get, f"{dev_server}/static/vendor/socket.io.min.js"
    )
    assert status == 200
    assert vendor.startswith(b"/*!\n * Socket.IO v4.")
    assert b"Released under the MIT License" in vendor[:200]
    for name in ("switchboard.js", "app.js", "style.css"):
        status, _, _ = await asyncio.to_thread(_get, f"{dev_server}/static/{name}")
        assert status == 200, name


async def test_without_dev_there_is_no_demo_page() -> None:
    async with serve_in_process(_settings(dev=False)) as url:
        status, _, _ = await asyncio.to_thread(_get, f"{url}/")
        static_status, _, _ = await asyncio.to_thread(_get, f"{url}/static/app.js")
    assert status == 404
    assert static_status == 404
