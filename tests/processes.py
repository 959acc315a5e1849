"""Helpers for tests that run the gateway as an operator does: as separate processes (the
``dsmf-gateway`` command, gunicorn), configured by a TOML file, on free loopback ports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import missing_requirement


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any ``DSMF_*`` setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSMF_")}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def toml_value(value: object) -> str:
    """A TOML value: numbers and booleans as such, strings (JSON string syntax is valid TOML),
    lists of those."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def write_toml(path: Path, values: dict[str, object]) -> Path:
    path.write_text("".join(f"{k} = {toml_value(v)}\n" for k, v in values.items()),
                    encoding="utf-8")
    return path


def gunicorn_executable() -> str:
    found = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which(
        "gunicorn")
    if found is None:
        missing_requirement("gunicorn is not installed (pip install -e '.[dev]')")
    return found


def wait_for_health(url: str, process: subprocess.Popen[bytes], log_path: Path,
                    deadline_seconds: float = 60.0) -> requests.Response:
    """Poll ``url`` until 200 (bounded in time and count); fail if the process dies."""
    deadline = time.monotonic() + deadline_seconds
    last = "no answer yet"
    for _ in range(600):
        if process.poll() is not None:
            pytest.fail(f"the process exited with {process.returncode}: "
                        f"{log_path.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            break
        try:
            answer = requests.get(url, timeout=max(1.0, min(15.0, deadline - time.monotonic())))
            if answer.status_code == 200:
                return answer
            last = f"{answer.status_code} {answer.text[:300]}"
        except (requests.ConnectionError, requests.Timeout) as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    pytest.fail(f"no healthy answer from {url} within {deadline_seconds}s: {last}; "
                f"{log_path.read_text(errors='replace')[-3000:]}")


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM (graceful), then SIGKILL if it does not end in ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        raise


def wait_until_gone(pids: list[int], deadline_seconds: float = 10.0) -> list[int]:
    """The processes of ``pids`` still alive after waiting up to ``deadline_seconds``."""
    deadline = time.monotonic() + deadline_seconds
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _alive(pid)]
        if alive:
            time.sleep(0.05)
    return alive


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii")
    except OSError:
        return []
    return [int(p) for p in text.split()]
