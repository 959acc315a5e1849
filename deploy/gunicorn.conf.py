"""gunicorn settings for the gateway in production (``gunicorn -c deploy/gunicorn.conf.py
'gateway.wsgi:create_app()'``). Every value can be overridden by the environment variable named
next to it, or on the command line.

Why these choices:
- ``gthread`` workers: a worker's threads wait on slow clients and on the upstream registry
  while the others keep answering; a sync worker is held whole by one slow client (slowloris
  stalled sync workers for 35 s per round). For hostile networks put a buffering reverse proxy
  (deploy/nginx.conf) in front: it absorbs slow clients entirely.
- ``timeout``: a worker silent this long (stuck) is killed and replaced; requests are bounded
  far below it (upstream timeouts, database timeouts).
- ``post_fork``: every worker asks the kernel for SIGTERM when the master dies, so a master
  killed with SIGKILL leaves no orphaned workers holding the port ("Connection in use" on
  restart). Run it under systemd (deploy/dsmf-gateway.service) for restarts.
"""

from __future__ import annotations

import ctypes
import os
import signal
from typing import Any

bind = os.environ.get("DSMF_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("DSMF_WORKERS", str(2 * (os.cpu_count() or 1))))
worker_class = "gthread"
threads = int(os.environ.get("DSMF_THREADS", "8"))
timeout = int(os.environ.get("DSMF_WORKER_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("DSMF_GRACEFUL_TIMEOUT", "20"))
keepalive = int(os.environ.get("DSMF_KEEPALIVE", "5"))
# Bounded request head: the SOAP body has its own limit (max_message_bytes).
limit_request_line = 8190
limit_request_fields = 64
limit_request_field_size = 8190
# Our own logging (gateway.logging_config) formats the application's lines; gunicorn's
# error log goes to stderr too, its access log is off (the message log records every exchange).
errorlog = "-"
accesslog = None
capture_output = False

_PR_SET_PDEATHSIG = 1


def post_fork(server: Any, worker: Any) -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != server.pid:
        # The master died between fork() and prctl(): nobody will signal us.
        os.kill(os.getpid(), signal.SIGTERM)
