"""Errors of the SOAP edge: the HTTP message and the envelope around a request, refused before
anything in it is verified or read.

    GatewayError
    ├── VersionMismatch             VersionMismatch (SOAP 1.1 §4.4.1: not a SOAP 1.1 Envelope,
    │                                 e.g. SOAP 1.2)
    ├── HeaderNotUnderstood         MustUnderstand (SOAP 1.1 §4.2.3: a header block for us with
    │                                 mustUnderstand="1" that we do not process)
    ├── HttpBodyMalformed           Client.Http.Malformed (broken chunked framing)
    └── ContentEncodingRefused      Client.Http.ContentEncoding (a coding other than gzip)
        ├── ContentEncodingCorrupt  Client.Http.ContentEncoding.Corrupt (not gzip, truncated)
        └── InflatedTooLarge        Client.Http.InflatedTooLarge (inflates past max_message_bytes)

The first two are the SOAP 1.1 standard fault codes themselves (``soapenv:VersionMismatch``,
``soapenv:MustUnderstand``), which SOAP stacks recognise without reading our catalogue.
"""

from __future__ import annotations

from gateway.domain.errors import GatewayError


class VersionMismatch(GatewayError):
    code = "VersionMismatch"


class HeaderNotUnderstood(GatewayError):
    code = "MustUnderstand"


class HttpBodyMalformed(GatewayError):
    code = "Client.Http.Malformed"


class ContentEncodingRefused(GatewayError):
    code = "Client.Http.ContentEncoding"


class ContentEncodingCorrupt(ContentEncodingRefused):
    code = "Client.Http.ContentEncoding.Corrupt"


class InflatedTooLarge(ContentEncodingRefused):
    code = "Client.Http.InflatedTooLarge"
