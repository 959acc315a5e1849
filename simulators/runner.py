"""Start the upstream simulators on loopback (tests, the embedded demo, ``dsmf-gateway
simulators``), and the test CA's OCSP responder when asked."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from gateway.wsgi_server import RunningServer, serve_in_thread
from simulators.mobile import PATH as MOBILE_PATH
from simulators.mobile import MobileSignatureSimulator, create_mobile_app
from simulators.ocsp import PATH as OCSP_PATH
from simulators.ocsp import OcspResponder
from simulators.population import PATH as POPULATION_PATH
from simulators.population import PopulationDirectory, create_population_app

__all__ = ["Simulators", "run_forever", "start_simulators"]


def _default_wsdl_dir() -> Path:
    from gateway.config import project_root

    return project_root() / "wsdl" / "upstream"


@dataclass
class Simulators:
    """Both simulators, running. ``mssp`` is the mobile simulator's state (for tests)."""

    population_server: RunningServer
    mobile_server: RunningServer
    mssp: MobileSignatureSimulator
    #: The issuing CA's OCSP responder, when started (``start_simulators(ocsp=True)``).
    ocsp_server: RunningServer | None = None
    ocsp_responder: OcspResponder | None = None

    @property
    def ocsp_url(self) -> str | None:
        if self.ocsp_server is None:
            return None
        return self.ocsp_server.url.rstrip("/") + OCSP_PATH

    @property
    def population_url(self) -> str:
        return self.population_server.url.rstrip("/") + POPULATION_PATH

    @property
    def population_wsdl_url(self) -> str:
        return self.population_url + "?wsdl"

    @property
    def mobile_url(self) -> str:
        return self.mobile_server.url.rstrip("/") + MOBILE_PATH

    @property
    def mobile_wsdl_url(self) -> str:
        return self.mobile_url + "?wsdl"

    def stop(self) -> None:
        self.population_server.stop()
        self.mobile_server.stop()
        if self.ocsp_server is not None:
            self.ocsp_server.stop()

    def __enter__(self) -> Simulators:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_simulators(
    pki_dir: Path,
    *,
    host: str = "127.0.0.1",
    population_port: int = 0,
    mobile_port: int = 0,
    approve_delay: float = 2.0,
    transaction_timeout: float = 60.0,
    wsdl_dir: Path | None = None,
    ocsp: bool = False,
    ocsp_port: int = 0,
    any_fin: bool = False,
) -> Simulators:
    """Serves the population registry and the mobile-signature service, each on its own port.

    ``pki_dir`` holds a test PKI (:func:`signing.testpki.build_test_pki`): the Asan İmza holders'
    keys sign on the simulated phones. Ports 0 pick free ports; the URLs are on the result.
    ``any_fin``: the population registry answers any valid FIN (:mod:`simulators.synthetic`).
    """
    wsdl_dir = wsdl_dir or _default_wsdl_dir()
    mssp = MobileSignatureSimulator.from_test_pki(
        Path(pki_dir), approve_delay=approve_delay, transaction_timeout=transaction_timeout
    )
    population_app = create_population_app(wsdl_dir, PopulationDirectory(any_fin=any_fin))
    mobile_app = create_mobile_app(wsdl_dir, mssp)
    population_server = serve_in_thread(population_app, host=host, port=population_port)
    try:
        mobile_server = serve_in_thread(mobile_app, host=host, port=mobile_port)
    except BaseException:
        population_server.stop()
        raise
    simulators = Simulators(population_server, mobile_server, mssp)
    if ocsp:
        try:
            responder = OcspResponder.from_test_pki(Path(pki_dir))
            simulators.ocsp_server = serve_in_thread(responder, host=host, port=ocsp_port)
            simulators.ocsp_responder = responder
        except BaseException:
            simulators.stop()
            raise
    return simulators


def run_forever(
    pki_dir: Path,
    *,
    host: str = "127.0.0.1",
    population_port: int = 0,
    mobile_port: int = 0,
    approve_delay: float = 2.0,
    transaction_timeout: float = 60.0,
    any_fin: bool = False,
) -> None:
    """Starts the simulators, prints where they are, and serves until SIGINT or SIGTERM."""
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    simulators = start_simulators(
        pki_dir,
        host=host,
        population_port=population_port,
        mobile_port=mobile_port,
        approve_delay=approve_delay,
        transaction_timeout=transaction_timeout,
        any_fin=any_fin,
    )
    try:
        print(f"population registry: {simulators.population_url}")
        print(f"  WSDL: {simulators.population_wsdl_url}")
        print(f"mobile signature:    {simulators.mobile_url}")
        print(f"  WSDL: {simulators.mobile_wsdl_url}")
        print("Ctrl-C stops.", flush=True)
        stop.wait()
    finally:
        simulators.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
