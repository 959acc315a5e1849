"""The upstream transport's own connection handling, against scripted HTTP/1.1 peers on raw
loopback sockets: kept-alive connections the peer closed, the pool's bound, answers too large,
cut off or compressed, and HTTPS verification."""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.domain.errors import UpstreamFault, UpstreamTimeout, UpstreamUnavailable
from gateway.domain.values import DocumentType
from gateway.upstream.population import ZeepPopulationRegistry
from gateway.upstream.transport import BoundedTransport

from .conftest import POPULATION_WSDL
from .test_prepared import PERSON
from .test_resilience import PING_OK

#: What a connection handler does with a connection: it gets the peer and the socket and
#: reads and answers as its test needs.
Handler = Callable[["RawPeer", socket.socket], None]


class RawPeer:
    """An HTTP/1.1 peer on a loopback socket: each connection is given to ``handler`` in a
    thread of its own; the peer counts connections and requests (thread-safe)."""

    def __init__(self, handler: Handler, *, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.connections = 0
        self.requests = 0
        self.closed_by_client = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.scheme = "https" if tls else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}/population-registry"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return  # stopped
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
            sock.settimeout(10)
            self.handler(self, sock)
        except OSError:
            pass  # the client went away, or refused our certificate
        finally:
            sock.close()

    def read_request(self, sock: socket.socket) -> bool:
        """Reads one request (headers and a Content-Length body); False at the client's EOF."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                with self.lock:
                    self.closed_by_client += 1
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            body += sock.recv(65536)
        with self.lock:
            self.requests += 1
        return True

    def stop(self) -> None:
        self.listener.close()


def answer(body: bytes = PING_OK.encode(), *, headers: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n{headers}\r\n").encode() + body


@pytest.fixture
def peers() -> Iterator[Callable[..., RawPeer]]:
    started: list[RawPeer] = []

    def start(handler: Handler, **options: ssl.SSLContext) -> RawPeer:
        peer = RawPeer(handler, **options)
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.stop()


def _registry(url: str) -> ZeepPopulationRegistry:
    # No retries: whatever succeeds, succeeds inside the transport.
    return ZeepPopulationRegistry(POPULATION_WSDL, url, timeout=5.0, retries=0)


# -- kept-alive connections the peer closed ---------------------------------------------------


def test_an_idle_connection_the_peer_closed_is_not_reused(
    peers: Callable[..., RawPeer],
) -> None:
    """The peer answers one request per connection and then closes it, as a server's idle
    timeout would: the next call notices before sending and connects afresh, even on a
    transport that never sends a request twice."""
    closed = threading.Event()

    def one_then_close(peer: RawPeer, sock: socket.socket) -> None:
        if peer.read_request(sock):
            sock.sendall(answer())  # kept alive as far as the client can tell
        sock.close()
        closed.set()

    peer = peers(one_then_close)
    transport = BoundedTransport(connect_timeout=5.0, read_timeout=5.0, resend_stale=False)
    for _ in range(3):
        closed.clear()
        assert transport.post(peer.url, b"<x/>", {}).status_code == 200
        assert closed.wait(5)
    assert (peer.connections, peer.requests) == (3, 3)


def test_a_lookup_is_resent_once_when_a_reused_connection_drops_it(
    peers: Callable[..., RawPeer],
) -> None:
    """The peer closes a kept-alive connection just as the second request arrives (the race
    a check before reuse cannot see): the registry's lookup goes once more on a fresh
    connection and the call succeeds (the registry here retries nothing itself)."""

    def drop_the_second(peer: RawPeer, sock: socket.socket) -> None:
        while peer.read_request(sock):
            if peer.requests == 2:
                return  # closes without an answer
            sock.sendall(answer())

    peer = peers(drop_the_second)
    registry = _registry(peer.url)
    registry.ping()
    registry.ping()
    assert (peer.connections, peer.requests) == (2, 3)


def test_a_transport_without_resend_never_sends_twice(peers: Callable[..., RawPeer]) -> None:
    """The same race on a transport for operations that start something (resend_stale off,
    the mobile-signature service's): the request is not sent again, the call fails."""

    def drop_the_second(peer: RawPeer, sock: socket.socket) -> None:
        while peer.read_request(sock):
            if peer.requests == 2:
                return
            sock.sendall(answer())

    peer = peers(drop_the_second)
    transport = BoundedTransport(connect_timeout=5.0, read_timeout=5.0)
    transport.post(peer.url, b"<x/>", {})
    with pytest.raises(requests.exceptions.ConnectionError):
        transport.post(peer.url, b"<x/>", {})
    assert (peer.connections, peer.requests) == (1, 2)


def test_a_fresh_connection_dropped_is_an_error_not_resent(
    peers: Callable[..., RawPeer],
) -> None:
    def never_answer(peer: RawPeer, sock: socket.socket) -> None:
        peer.read_request(sock)

    peer = peers(never_answer)
    with pytest.raises(UpstreamUnavailable) as caught:
        _registry(peer.url).ping()
    assert caught.value.code == "Server.Upstream.Unavailable"
    assert (peer.connections, peer.requests) == (1, 1)


def test_an_answer_the_peer_ends_by_closing_is_read_whole(
    peers: Callable[..., RawPeer],
) -> None:
    """An answer without a length, ended by the peer closing the connection (HTTP/1.0 style):
    read to its end, and the next call connects afresh."""

    def close_delimited(peer: RawPeer, sock: socket.socket) -> None:
        peer.read_request(sock)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\n"
                     b"Connection: close\r\n\r\n")
        sock.sendall(PING_OK.encode())

    peer = peers(close_delimited)
    registry = _registry(peer.url)
    registry.ping()
    registry.ping()
    assert (peer.connections, peer.requests) == (2, 2)


def test_a_peer_that_drips_its_headers_meets_the_deadline(
    peers: Callable[..., RawPeer],
) -> None:
    """The whole-answer deadline holds from the status line on: a header byte every 50 ms
    (each well within the read timeout) does not hold the call for the 10 s of headers."""
    stop = threading.Event()

    def drip_headers(peer: RawPeer, sock: socket.socket) -> None:
        peer.read_request(sock)
        sock.sendall(b"HTTP/1.1 200 OK\r\n")
        for _ in range(200):
            if stop.wait(0.05):
                return
            sock.sendall(b"X-Slow: y\r\n")

    peer = peers(drip_headers)
    try:
        with pytest.raises(UpstreamTimeout) as caught:
            ZeepPopulationRegistry(POPULATION_WSDL, peer.url, timeout=0.4, retries=0).ping()
    finally:
        stop.set()
    assert caught.value.code == "Server.Upstream.Timeout"


# -- the pool's bound ---------------------------------------------------------------------------


def test_the_pool_keeps_at_most_pool_size_connections(peers: Callable[..., RawPeer]) -> None:
    """Four calls at once need four connections; two are kept, the others closed, and the
    calls after reuse the kept ones."""
    all_arrived = threading.Barrier(4, timeout=10)

    def keep_alive(peer: RawPeer, sock: socket.socket) -> None:
        while peer.read_request(sock):
            if peer.requests <= 4:
                all_arrived.wait()
            sock.sendall(answer())

    peer = peers(keep_alive)
    transport = BoundedTransport(connect_timeout=5.0, read_timeout=5.0, pool_size=2)
    statuses: list[int] = []
    burst = [threading.Thread(target=lambda: statuses.append(
        transport.post(peer.url, b"<x/>", {}).status_code)) for _ in range(4)]
    for thread in burst:
        thread.start()
    for thread in burst:
        thread.join(10)
    assert statuses == [200] * 4
    assert len(transport._routes[peer.url].idle) == 2
    for _ in range(3):
        transport.post(peer.url, b"<x/>", {})
    assert (peer.connections, peer.requests) == (4, 7)
    assert len(transport._routes[peer.url].idle) == 2


# -- answers refused --------------------------------------------------------------------------


def test_an_endless_chunked_answer_is_refused_at_the_cap(peers: Callable[..., RawPeer]) -> None:
    def endless(peer: RawPeer, sock: socket.socket) -> None:
        peer.read_request(sock)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"<" + b"x" * (64 * 1024 - 1)
        for _ in range(64):  # 4 MiB at most, four times the default cap
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    peer = peers(endless)
    with pytest.raises(UpstreamFault, match="oversized") as caught:
        _registry(peer.url).ping()
    assert caught.value.code == "Server.Upstream.Fault"


def test_a_declared_length_over_the_cap_is_refused_before_reading(
    peers: Callable[..., RawPeer],
) -> None:
    """The peer declares a gigabyte and sends a few bytes, then waits: refused at once (not
    after the deadline, which would be a timeout)."""
    release = threading.Event()

    def huge(peer: RawPeer, sock: socket.socket) -> None:
        peer.read_request(sock)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
                     b"Content-Length: 1000000000\r\n\r\n<x")
        release.wait(10)

    peer = peers(huge)
    try:
        with pytest.raises(UpstreamFault, match="oversized") as caught:
            ZeepPopulationRegistry(POPULATION_WSDL, peer.url, timeout=30.0, retries=0).ping()
    finally:
        release.set()
    assert caught.value.code == "Server.Upstream.Fault"


def test_an_answer_cut_off_before_its_length_is_unavailable(
    peers: Callable[..., RawPeer],
) -> None:
    def cut_off(peer: RawPeer, sock: socket.socket) -> None:
        peer.read_request(sock)
        whole = answer()
        sock.sendall(whole[: len(whole) - 40])

    peer = peers(cut_off)
    with pytest.raises(UpstreamUnavailable) as caught:
        _registry(peer.url).ping()
    assert caught.value.code == "Server.Upstream.Unavailable"


def test_a_compressed_answer_is_refused(peers: Callable[..., RawPeer]) -> None:
    """We ask for no encoding; a gzip answer is refused, not parsed and not unpacked."""

    def gzipped(peer: RawPeer, sock: socket.socket) -> None:
        while peer.read_request(sock):
            sock.sendall(answer(gzip.compress(PING_OK.encode()),
                                headers="Content-Encoding: gzip\r\n"))

    peer = peers(gzipped)
    with pytest.raises(UpstreamFault, match="encoding") as caught:
        _registry(peer.url).ping()
    assert caught.value.code == "Server.Upstream.Fault"


# -- interim answers and answers for someone else ----------------------------------------------


def test_an_interim_answer_is_skipped_and_the_next_call_reads_its_own(
    peers: Callable[..., RawPeer],
) -> None:
    """A peer sends ``102 Processing`` and the real answer a moment later. Taken for the final
    answer, the 102 would have left the real one on the kept-alive connection for the next
    call to read as its own (another person's data in the next lookup)."""
    first, second = PERSON, PERSON.replace(b"5GH3J7K", b"7MX2C9R")

    def processing_first(peer: RawPeer, sock: socket.socket) -> None:
        while peer.read_request(sock):
            if peer.requests == 1:
                sock.sendall(b"HTTP/1.1 102 Processing\r\n\r\n"
                             b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n")
                time.sleep(0.3)
                sock.sendall(answer(first))
            else:
                sock.sendall(answer(second))

    peer = peers(processing_first)
    transport = BoundedTransport(connect_timeout=5.0, read_timeout=5.0)
    assert transport.post(peer.url, b"<x/>", {}).content == first
    assert transport.post(peer.url, b"<x/>", {}).content == second
    assert (peer.connections, peer.requests) == (1, 2)


def test_switching_protocols_unasked_is_an_error(peers: Callable[..., RawPeer]) -> None:
    def switch(peer: RawPeer, sock: socket.socket) -> None:
        while peer.read_request(sock):
            sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")

    peer = peers(switch)
    with pytest.raises(UpstreamUnavailable) as caught:
        _registry(peer.url).ping()
    assert caught.value.code == "Server.Upstream.Unavailable"


def test_a_person_for_another_fin_is_refused(peers: Callable[..., RawPeer]) -> None:
    """Whatever mixed the answers up on the way, the gateway never puts one person's data in
    another's place: the answer must be for the FIN asked about."""

    def always_the_same_person(peer: RawPeer, sock: socket.socket) -> None:
        while peer.read_request(sock):
            sock.sendall(answer(PERSON))  # 5GH3J7K, whoever is asked for

    peer = peers(always_the_same_person)
    registry = _registry(peer.url)
    assert registry.find_person(DocumentType.ID_CARD, "5GH3J7K").fin == "5GH3J7K"
    with pytest.raises(UpstreamFault, match="not the FIN asked for") as caught:
        registry.find_person(DocumentType.ID_CARD, "7MX2C9R")
    assert caught.value.code == "Server.Upstream.Fault"


# -- HTTPS --------------------------------------------------------------------------------------


def _tls_peer_context(directory: Path, host_name: str | None) -> tuple[ssl.SSLContext, Path]:
    """A server context whose certificate a fresh CA issued (for 127.0.0.1, or for
    ``host_name`` only), and the CA's certificate file."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "transport test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = (
        [x509.DNSName(host_name)] if host_name
        else [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file, chain_file = directory / "ca.pem", directory / "server.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain_file)
    return context, ca_file


def _answer_all(peer: RawPeer, sock: socket.socket) -> None:
    while peer.read_request(sock):
        sock.sendall(answer())


def test_https_refuses_a_certificate_no_trusted_authority_issued(
    peers: Callable[..., RawPeer], tmp_path: Path,
) -> None:
    context, _ = _tls_peer_context(tmp_path, None)
    peer = peers(_answer_all, tls=context)
    with pytest.raises(UpstreamUnavailable) as caught:
        _registry(peer.url).ping()
    assert caught.value.code == "Server.Upstream.Unavailable"
    assert peer.requests == 0


def test_https_verifies_the_host_name_against_the_trust_store(
    peers: Callable[..., RawPeer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the CA in the system's trust store (OpenSSL's SSL_CERT_FILE), a certificate for
    127.0.0.1 is accepted and one for another name is not."""
    (tmp_path / "good").mkdir()
    (tmp_path / "other").mkdir()
    good, ca_file = _tls_peer_context(tmp_path / "good", None)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    peer = peers(_answer_all, tls=good)
    registry = _registry(peer.url)
    registry.ping()
    registry.ping()
    assert (peer.connections, peer.requests) == (1, 2)

    other, other_ca = _tls_peer_context(tmp_path / "other", "registry.example")
    monkeypatch.setenv("SSL_CERT_FILE", str(other_ca))
    misnamed = peers(_answer_all, tls=other)
    with pytest.raises(UpstreamUnavailable):
        _registry(misnamed.url).ping()
    assert misnamed.requests == 0
