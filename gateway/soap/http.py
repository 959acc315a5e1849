"""The HTTP side of a SOAP request, the same on every server (waitress embedded, gunicorn):
reading the body within the size limit, its content coding, and the answer's.

* A body is read up to ``max_message_bytes``: by its ``Content-Length``, or, when it has none
  (``Transfer-Encoding: chunked``, which CXF uses for anything over 4 KB), to the end of a stream
  the server terminates for us (``wsgi.input_terminated``), never further than the limit + 1.
* ``Content-Encoding: gzip`` bodies are accepted: the compressed body counts against the limit
  as received, and it is inflated in a bounded way (never more than the limit + 1 bytes of
  output, whatever the ratio), so a zip bomb costs us the limit and no more.
* An answer is gzip-compressed when the request's ``Accept-Encoding`` allows gzip.
"""

from __future__ import annotations

import gzip
import zlib
from typing import Any

from gateway.soap.errors import (
    ContentEncodingCorrupt,
    ContentEncodingRefused,
    HttpBodyMalformed,
    InflatedTooLarge,
)
from signing.errors import XmlTooLarge

GZIP_CODINGS = frozenset({"gzip", "x-gzip"})
# Answers are small (a few kB to a few hundred); a middle level costs little CPU for most of the
# gain.
ANSWER_GZIP_LEVEL = 5


def read_request_body(environ: dict[str, Any], limit: int) -> bytes:
    """The request body, decoded from its content coding; raises the refusal otherwise."""
    coding = _content_coding(environ)
    raw = _read_raw(environ, limit)
    if coding is None:
        return raw
    return inflate_gzip(raw, limit)


def inflate_gzip(data: bytes, limit: int) -> bytes:
    """Inflates gzip ``data`` (one member or several, RFC 1952), to at most ``limit`` bytes."""
    out = bytearray()
    rest = data
    try:
        while True:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            # max_length bounds the output whatever the compression ratio (a bomb inflates
            # a thousandfold); it is always >= 1 here, as 0 would mean "unbounded".
            out += inflater.decompress(rest, limit + 1 - len(out))
            if len(out) > limit or inflater.unconsumed_tail:
                raise InflatedTooLarge(
                    f"the gzip request body inflates to more than {limit} bytes"
                )
            if not inflater.eof:
                raise ContentEncodingCorrupt("the gzip request body is truncated")
            rest = inflater.unused_data
            if not rest:
                return bytes(out)
    except zlib.error as exc:
        raise ContentEncodingCorrupt(f"the request body is not valid gzip data ({exc})") from exc


def accepts_gzip(environ: dict[str, Any]) -> bool:
    """Whether ``Accept-Encoding`` allows a gzip answer (``gzip``/``x-gzip``, q > 0)."""
    for item in (environ.get("HTTP_ACCEPT_ENCODING") or "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() not in GZIP_CODINGS:
            continue
        quality = params.strip().lower()
        if quality.startswith("q="):
            try:
                return float(quality[2:]) > 0
            except ValueError:
                return False
        return True
    return False


def answer(environ: dict[str, Any], body: bytes,
           content_type: str) -> tuple[bytes, list[tuple[str, str]]]:
    """The bytes to send and their headers: gzip-compressed when the client accepts it."""
    headers = [("Content-Type", content_type), ("Vary", "Accept-Encoding")]
    if accepts_gzip(environ):
        body = gzip.compress(body, compresslevel=ANSWER_GZIP_LEVEL, mtime=0)
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(len(body))))
    return body, headers


def _content_coding(environ: dict[str, Any]) -> str | None:
    """None for an unencoded body, "gzip" for gzip; any other coding is refused."""
    codings = [c.strip().lower() for c in (environ.get("HTTP_CONTENT_ENCODING") or "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in GZIP_CODINGS:
        return "gzip"
    raise ContentEncodingRefused(
        f"Content-Encoding {', '.join(codings)} is not supported (gzip is)"
    )


def _read_raw(environ: dict[str, Any], limit: int) -> bytes:
    stream = environ["wsgi.input"]
    declared = (environ.get("CONTENT_LENGTH") or "").strip()
    too_large = XmlTooLarge(f"the request is larger than {limit} bytes")
    if declared:
        try:
            length = int(declared)
        except ValueError as exc:
            raise HttpBodyMalformed(f"Content-Length {declared!r} is not a number") from exc
        if length < 0:
            raise HttpBodyMalformed(f"Content-Length {declared!r} is negative")
        if length > limit:
            raise too_large  # refused without reading it
        return _read(stream, length, too_large)
    if not environ.get("wsgi.input_terminated"):
        # No length and a server that does not end the stream for us: reading would wait for
        # a close that never comes. (Both our servers terminate chunked bodies.)
        return b""
    data = _read(stream, limit + 1, too_large)
    if len(data) > limit:
        raise too_large
    return data


def _read(stream: Any, size: int, too_large: XmlTooLarge) -> bytes:
    try:
        data: bytes = stream.read(size)
    except ValueError as exc:  # what servers raise for broken chunk framing
        raise HttpBodyMalformed(f"the chunked request body is malformed ({exc})") from exc
    except Exception as exc:
        # A server's own size cap may stop a chunked body past it mid-read (gunicorn reads it
        # as we go); below it our limit answers first.
        raise too_large from exc
    return data
