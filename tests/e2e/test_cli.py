"""The real `switchboard` console command, run as a subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.support.redis_server import free_port

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
SWITCHBOARD = BIN / "switchboard"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


def clean_env() -> dict[str, str]:
    """The test's environment without any Switchboard or Redis setting."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SWITCHBOARD_") and k not in ("REDIS_URL", "REDIS_FALLBACK")
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def healthz_status(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


@contextlib.contextmanager
def running(command: Sequence[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start the command; always kill it afterwards, whatever happened."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command), stdout=out, stderr=subprocess.STDOUT, env=clean_env()
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)


def wait_healthy(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"exited early with {process.returncode}:\n{log.read_text()}")
        if healthz_status(port) == 200:
            return
        time.sleep(0.1)
    pytest.fail(f"/healthz did not answer 200 within {START_TIMEOUT_S} s:\n{log.read_text()}")


def stop_with_sigterm(process: subprocess.Popen[bytes], log: Path) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"did not exit within {STOP_TIMEOUT_S} s of SIGTERM:\n{log.read_text()}")


def test_console_script_is_installed() -> None:
    assert SWITCHBOARD.exists(), f"no console script at {SWITCHBOARD}"


def test_serve_without_secrets_exits_2_with_a_clear_message() -> None:
    result = subprocess.run(
        [str(SWITCHBOARD), "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "configuration error" in result.stderr
    assert "SWITCHBOARD_JWT_SECRET" in result.stderr
    assert "--dev" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_a_short_secret_exits_2() -> None:
    env = {**clean_env(), "SWITCHBOARD_JWT_SECRET": "short", "SWITCHBOARD_API_KEY": "k"}
    result = subprocess.run(
        [str(SWITCHBOARD), "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "at least 32 bytes" in result.stderr


def test_unknown_subcommand_is_a_usage_error() -> None:
    result = subprocess.run(
        [str(SWITCHBOARD), "frobnicate"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "usage" in result.stderr.lower()


def test_serve_dev_answers_healthz_and_drains_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    with running([str(SWITCHBOARD), "serve", "--dev", "--port", str(port)], log) as process:
        wait_healthy(process, port, log)
        assert stop_with_sigterm(process, log) == 0
    output = log.read_text()
    assert "dev mode" in output
    assert f"127.0.0.1:{port}" in output
    assert "API key" in output
    assert "Traceback" not in output


def test_python_m_application_serves_too(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "application", "serve", "--dev", "--port", str(port)]
    with running(command, log) as process:
        wait_healthy(process, port, log)
        assert stop_with_sigterm(process, log) == 0
    assert "Traceback" not in log.read_text()
