"""Production entry point for a WSGI server (gunicorn), configured by file and environment:

    DSMF_CONFIG=/etc/dsmf/gateway.toml gunicorn -w 4 -b 0.0.0.0:8080 'gateway.wsgi:create_app()'

Each worker process builds its own gateway (database pool, PKCS#11 session) after the fork, so
workers share nothing but the database: scale out with more workers and hosts on one PostgreSQL.
Migrations are not run here (``dsmf-gateway migrate`` does, once, before a deploy).
"""

from __future__ import annotations

import logging

from gateway.bootstrap import build_gateway
from gateway.config import Settings
from gateway.soap.endpoint import SoapEndpoint


def create_app() -> SoapEndpoint:
    # spyne logs every exception our operations raise at CRITICAL, with a traceback; we
    # answer (and log) them as faults ourselves, so nothing of spyne's gets through.
    logging.getLogger("spyne").setLevel(logging.CRITICAL + 1)
    gateway = build_gateway(Settings.load(), migrate=False)
    # Every worker runs a sealer; the lease in the database lets one seal at a time.
    gateway.start_sealer()
    return gateway.app
