"""JAX-WS ``wsimport -XadditionalHeaders`` (Debian ``jaxws``) generates a client from our WSDL.

It failed while header part names equalled body element names (``userId``, ``service``,
``sessionToken``): header parts become method parameters beside the body's. Run for real;
``scripts/test`` installs ``jaxws`` (missing: fails in CI, skips locally).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.conftest import missing_requirement

WSDL = Path(__file__).resolve().parents[2] / "wsdl" / "gateway.wsdl"
HEADER_PARTS = ("xroadClient", "xroadService", "xroadId", "xroadUserId", "xroadIssue",
                "xroadProtocolVersion", "sessionTokenHeader", "xroadRequestHash")


def test_wsimport_with_additional_headers_generates_the_port(tmp_path: Path) -> None:
    wsimport = shutil.which("wsimport")
    if wsimport is None:
        missing_requirement("wsimport (Debian package jaxws) is not installed")
    result = subprocess.run(
        [wsimport, "-XadditionalHeaders", "-Xnocompile", "-d", str(tmp_path), str(WSDL)],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    ports = list(tmp_path.rglob("InsuredRegistrationPortType.java"))
    assert len(ports) == 1, sorted(p.name for p in tmp_path.rglob("*.java"))
    source = ports[0].read_text(encoding="utf-8")
    # Every operation takes the X-Road headers and the session header as parameters.
    find_person = re.search(r"public void findPerson\((.*?)\)\s*throws GatewayFault", source,
                            re.DOTALL)
    assert find_person is not None
    for part in HEADER_PARTS:
        assert f'partName = "{part}"' in find_person.group(1), part
