"""Production entry point for a WSGI server (gunicorn), configured by file and environment:

    DSMF_CONFIG=/etc/dsmf/gateway.toml \
        gunicorn -c deploy/gunicorn.conf.py 'gateway.wsgi:create_app()'

Each worker process builds its own gateway (database pool, PKCS#11 session) after the fork, so
workers share nothing but the database: scale out with more workers and hosts on one PostgreSQL.
Each worker also runs the loop that finishes SUBMITTED applications (a database lease lets one
worker on one host work at a time). Migrations are not run here (``dsmf-gateway migrate`` does,
once, before a deploy).
"""

from __future__ import annotations

from gateway.bootstrap import build_gateway
from gateway.config import Settings
from gateway.logging_config import configure_logging
from gateway.soap.endpoint import SoapEndpoint


def create_app() -> SoapEndpoint:
    settings = Settings.load()
    configure_logging(settings.log_format, settings.log_level)
    gateway = build_gateway(settings, migrate=False)
    gateway.start_worker()  # the finisher only if finisher_enabled
    # Every worker runs a sealer; the lease in the database lets one seal at a time.
    gateway.start_sealer()
    return gateway.app
